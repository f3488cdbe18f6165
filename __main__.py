"""`python -m longwatch` runs the CLI.

Same entry point as the `longwatch` console script.
"""

from longwatch.app.cli import main

raise SystemExit(main())
