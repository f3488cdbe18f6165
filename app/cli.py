"""The `longwatch` command line: one subcommand per module, typed errors mapped to exit codes.

Only this module reads argv. Each command module exposes `HELP`, `add_arguments(parser)` and
`run(args) -> int`, imports heavy libraries inside `run`, and is listed once in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys

from longwatch import __version__
from longwatch.errors import LongwatchError

# name -> module; modules stay import-light so `longwatch --help` is instant.
COMMANDS: dict[str, str] = {
    "demo": "longwatch.app.cmd_demo",
    "ingest": "longwatch.app.cmd_ingest",
    "ask": "longwatch.app.cmd_ask",
    "watch": "longwatch.app.cmd_watch",
    "videos": "longwatch.app.cmd_videos",
    # The UI's own command: named here, never imported by app code, so app stays below ui.
    "serve": "longwatch.ui.cmd_serve",
    "batch": "longwatch.app.cmd_batch",
    "eval": "longwatch.app.cmd_eval",
    "probe": "longwatch.app.cmd_probe",
    "samples": "longwatch.app.cmd_samples",
    "models": "longwatch.app.cmd_models",
    "transcript": "longwatch.app.cmd_transcript",
}

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="longwatch", description="Ask questions about long videos and live streams.")
    parser.add_argument("--version", action="version", version=f"longwatch {__version__}")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a command whose module has not landed yet is simply not offered
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def emit(args: argparse.Namespace, payload: dict, text: str) -> None:
    """Print `payload` as JSON under --json, else the human-readable `text`."""
    print(json.dumps(payload, indent=2, default=str) if args.json else text)


def clock(seconds: float) -> str:
    """`3668.2` -> `"1:01:08"`: a duration or a time as the commands print it for people."""
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.run(args) or 0)
    except LongwatchError as exc:
        # A typed error is the user's to fix: one clear line, never a traceback.
        if args.json:
            print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        else:
            print(f"longwatch: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("longwatch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`longwatch videos | head`): not an error of ours. Point stdout at devnull
        # so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
