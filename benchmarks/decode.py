"""Decode throughput: longwatch's file sources sampling at a target fps vs a plain sequential PyAV decode, same run.

Usage: python benchmarks/decode.py [VIDEO] [--fps 1] [--max-side N]; without VIDEO it generates a 10-minute 640x360 sample.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path


class PeakRSS:
    """Peak resident memory of this process and its children (decord runs in a worker), sampled every 50 ms."""

    def __enter__(self):
        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.proc.memory_info().rss + sum(c.memory_info().rss for c in self.proc.children(True))
            except Exception:  # a child that exits between listing and reading
                continue
            self.peak = max(self.peak, rss)
            self._stop.wait(0.05)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def plain_pyav(path: str, fps: float) -> tuple[int, int]:
    """The baseline: decode every frame to RGB in order and keep one per 1/fps of pts (no longwatch code)."""
    import av

    kept = decoded = 0
    next_t = 0.0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            image = frame.to_ndarray(format="rgb24")
            decoded += 1
            if frame.time is not None and frame.time + 1e-6 >= next_t:
                kept += 1
                next_t += 1.0 / fps
            del image
    return kept, decoded


def longwatch_source(path: str, fps: float, backend: str, max_side: int | None) -> tuple[int, int]:
    from longwatch.pipeline.sources import DECODE_STATS, FileSource

    before = DECODE_STATS.frames_decoded
    with FileSource(path, backend=backend) as src:
        kept = sum(1 for _ in src.frames(fps=fps, max_side=max_side))
        used = src.used_backend
    if used != backend and backend != "auto":
        print(f"  note: {backend} fell back to {used}")
    return kept, DECODE_STATS.frames_decoded - before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?")
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--max-side", type=int, default=None)
    parser.add_argument("--backends", nargs="+", default=["pyav", "decord", "auto"], choices=["pyav", "decord", "auto"])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the generated sample without VIDEO")
    args = parser.parse_args(argv)
    from longwatch.pipeline.probe import probe

    path = args.video
    if path is None:
        from longwatch.samples.videos import make_long

        path = str(Path(tempfile.mkdtemp()) / "decode_bench.mp4")
        t = time.perf_counter()
        make_long(path, hours=args.minutes / 60)
        print(f"generated {path} in {time.perf_counter() - t:.1f} s")
    info = probe(path)
    print(f"{info.describe()}\nsampling at {args.fps:g} fps, max_side={args.max_side}")
    rows = []
    runs = [("plain PyAV, every frame to RGB (baseline)", lambda: plain_pyav(path, args.fps))]
    for backend in args.backends:
        runs.append((f"longwatch FileSource backend={backend}",
                     lambda b=backend: longwatch_source(path, args.fps, b, args.max_side)))
    for name, fn in runs:
        with PeakRSS() as mem:
            t = time.perf_counter()
            kept, decoded = fn()
            wall = time.perf_counter() - t
        rows.append((name, wall, kept, decoded, mem.peak))
    base = rows[0][1]
    print("\n| method | wall s | video s per wall s | speed vs baseline | frames out | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for name, wall, kept, decoded, peak in rows:
        print(f"| {name} | {wall:.1f} | {info.duration / wall:.0f} | {base / wall:.2f}x | {kept} | {peak / 2**20:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
