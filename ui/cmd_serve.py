"""`longwatch serve`: the web UI on one shared bank and model preset, on 127.0.0.1 unless told otherwise.

Uploads are bounded by --max-upload-mb and copied into the bank's own folder before ingest. The Live tab opens
only network streams of the schemes in the config's [live] allowed_schemes (rtsp, rtsps, http, https by default);
webcams and local sources (files, file:, tcp:, pipe: ...) need [live] allow_webcam / allow_local = true.
"""

from __future__ import annotations

import argparse

HELP = "serve the web UI (upload, ask with clickable quotes and time ranges, searchable transcript, library, live)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from longwatch.app import add_bank_arguments

    parser.add_argument("--host", help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it to the network)")
    parser.add_argument("--port", type=int, help="port (default 7860)")
    parser.add_argument("--auth", help="require a login, as user:password")
    parser.add_argument("--max-upload-mb", type=int, help="largest accepted upload in MB (default 4096)")
    add_bank_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from longwatch.app import LongWatch, config_from_args, require_optional

    require_optional("gradio", "longwatch serve")
    from longwatch.ui.app import create_app, launch
    config = config_from_args(args)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("auth", args.auth),
                                   ("max_upload_mb", args.max_upload_mb)) if v is not None}
    ui = replace(config.ui, **overrides)
    if ui.host not in ("127.0.0.1", "localhost", "::1") and ui.auth is None:
        print(f"longwatch: warning: serving on {ui.host} without --auth; anyone who can reach it can upload")
    if config.live.allow_local:
        print("longwatch: warning: [live] allow_local = true: users of the Live tab can make this server read "
              "any file it can read and open local sockets")
    with LongWatch.open(config=config) as lw:
        launch(create_app(lw), lw, ui)
    return 0
