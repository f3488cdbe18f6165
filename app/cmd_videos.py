"""`longwatch videos`: list the videos in a bank (duration, clips, disk use), or `videos rm ID…` to delete some.

Deleting removes a video's memories and the bank's own uploaded copy; files ingested in place stay.
"""

from __future__ import annotations

import argparse

HELP = "list the videos in a bank, or remove some (`videos rm ID...`)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from longwatch.app.config import add_bank_arguments

    parser.add_argument("action", nargs="?", choices=["list", "rm"], default="list")
    parser.add_argument("ids", nargs="*", metavar="ID", help="video ids to remove (with rm)")
    add_bank_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from longwatch.app.api import LongWatch
    from longwatch.app.cli import emit
    from longwatch.app.config import config_from_args
    from longwatch.memory import BankBusy, check_video_id
    from longwatch.pipeline.answer import format_time

    if args.action == "rm" and not args.ids:
        raise SystemExit("longwatch videos rm: name the video ids to remove (see `longwatch videos`)")
    if args.action == "list" and args.ids:
        raise SystemExit("longwatch videos: ids are only taken by `videos rm ID...`")
    for video_id in args.ids:
        check_video_id(video_id)  # every id is refused before the bank is opened, so a bad one removes nothing
    config = config_from_args(args)
    if args.action == "list" and not config.bank_root.exists():
        emit(args, {"videos": []}, f"no videos yet: bank {config.bank_root} does not exist")
        return 0
    # Listing and deleting need no models; listing reads beside a running ingest or `serve`, which hold the
    # writer lock. Deleting needs that lock itself.
    try:
        lw = LongWatch.open(config=config, load_models=False, readonly=args.action == "list")
    except BankBusy:
        raise BankBusy(f"{config.bank_root}: another process is writing this bank (found: its writer lock held, "
                       f"e.g. by a running `longwatch ingest`, `watch` or `serve`). `videos rm` needs the bank to "
                       f"itself: let that process finish (or stop it), then run `longwatch videos rm "
                       f"{' '.join(args.ids)}` again.") from None
    with lw:
        if args.action == "rm":
            for video_id in args.ids:
                lw.delete(video_id)
            emit(args, {"removed": args.ids}, "\n".join(f"removed {v}" for v in args.ids))
            return 0
        refs = lw.videos()
    lines = [f"{r.video_id:<32} {'live' if r.duration is None else format_time(r.duration):>9} {r.clips:>6} clips "
             f"{r.state:<18} {r.bytes_on_disk / 2**20:8.1f} MB  {r.source}" + (f"  {r.gaps_text()}" if r.gaps else "")
             for r in refs]
    emit(args, {"videos": [r.to_dict() for r in refs]}, "\n".join(lines) or "no videos in this bank yet")
    return 0

