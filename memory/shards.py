"""Append-only token shards: one file per (video, kind), clips' [N, D] tensors back to back, read by mmap.

Bytes past the last offset SQLite committed are a torn append from a crash; the writer truncates them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from longwatch.memory.records import BankInputError

ALIGN = 64  # each clip's tensor starts on a cache line so views are aligned for vector loads
KIND_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
# numpy has no bfloat16: its bytes travel as int16 and are re-viewed as torch.bfloat16 on read.
STORE_DTYPES = {"float16": np.float16, "bfloat16": np.int16, "float32": np.float32}


def check_kind(kind: str) -> str:
    if not isinstance(kind, str) or not KIND_RE.match(kind):
        raise BankInputError(f"token kind {kind!r} is not a valid name; use letters, digits and '_' "
                             f"(e.g. 'memory', 'detail', 'svlm')")
    return kind


def as_token_bytes(kind: str, x) -> tuple[bytes, int, int, str]:
    """(raw bytes, n, d, dtype name) of a [N, D] numpy array or torch tensor; rejects other shapes and NaN/inf."""
    if type(x).__module__.split(".")[0] == "torch":
        import torch

        x = x.detach().cpu().contiguous()
        dtype = str(x.dtype).removeprefix("torch.")
        if dtype not in STORE_DTYPES:
            raise BankInputError(f"tokens[{kind!r}] has dtype {dtype}; store float16, bfloat16 or float32")
        if x.ndim != 2:
            raise BankInputError(f"tokens[{kind!r}] has shape {tuple(x.shape)}; expected [N, D]")
        if not bool(torch.isfinite(x).all()):
            raise BankInputError(f"tokens[{kind!r}] contains NaN or inf; refusing to store it")
        arr = x.view(torch.int16).numpy() if dtype == "bfloat16" else x.numpy()
    elif isinstance(x, np.ndarray):
        dtype = str(x.dtype)
        if dtype not in ("float16", "float32"):
            raise BankInputError(f"tokens[{kind!r}] has numpy dtype {dtype}; store float16 or float32 "
                                 f"(or a torch bfloat16 tensor)")
        if x.ndim != 2:
            raise BankInputError(f"tokens[{kind!r}] has shape {x.shape}; expected [N, D]")
        if not np.isfinite(x).all():
            raise BankInputError(f"tokens[{kind!r}] contains NaN or inf; refusing to store it")
        arr = np.ascontiguousarray(x)
    else:
        raise BankInputError(f"tokens[{kind!r}] is a {type(x).__name__}; pass a numpy array or torch tensor [N, D]")
    return arr.tobytes(), int(arr.shape[0]), int(arr.shape[1]), dtype


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Shards:
    """Shard files under `root/shards/v<video rowid>/<kind>.tok`."""

    def __init__(self, root: Path):
        self.root = root / "shards"

    def path(self, vid: int, kind: str) -> Path:
        return self.root / f"v{vid}" / f"{kind}.tok"

    def append(self, vid: int, kind: str, committed_end: int, chunks: list[bytes]) -> list[int]:
        """Write `chunks` from the first aligned offset past `committed_end`, fsync once, return their offsets.

        Anything after committed_end (a torn append from a crash) is cut off first.
        """
        path = self.path(vid, kind)
        new_dir = not path.parent.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        offsets, end = [], committed_end
        with open(path, "ab+") as f:  # append mode writes at EOF, which the truncate puts at committed_end
            f.truncate(committed_end)
            for data in chunks:
                offset = -(-end // ALIGN) * ALIGN
                f.write(b"\0" * (offset - end))
                f.write(data)
                offsets.append(offset)
                end = offset + len(data)
            f.flush()
            os.fsync(f.fileno())
        if new_dir:
            fsync_dir(path.parent)
            fsync_dir(self.root)
        return offsets

    def truncate(self, vid: int, kind: str, committed_end: int) -> bool:
        """Cut a torn tail; True when there was one."""
        path = self.path(vid, kind)
        if not path.exists() or path.stat().st_size <= committed_end:
            return False
        with open(path, "r+b") as f:
            f.truncate(committed_end)
            os.fsync(f.fileno())
        return True

    def read(self, kind: str, locs: list[tuple[int, int, int, int, str]]) -> list:
        """Torch tensors [n, d] for (vid, offset, n, d, dtype) locations, viewing the shard pages without copies.

        Each call maps the files afresh, copy-on-write: a caller writing into its tensor changes neither the
        file nor what any other call returns.
        """
        import torch

        maps: dict[int, np.memmap] = {}
        out = []
        for vid, offset, n, d, dtype in locs:
            np_dtype = np.dtype(STORE_DTYPES[dtype])
            if n * d == 0:
                arr = np.zeros((n, d), np_dtype)
            else:
                if vid not in maps:
                    maps[vid] = np.memmap(self.path(vid, kind), dtype=np.uint8, mode="c")
                arr = maps[vid][offset:offset + n * d * np_dtype.itemsize].view(np_dtype).reshape(n, d)
            t = torch.from_numpy(arr)
            out.append(t.view(torch.bfloat16) if dtype == "bfloat16" else t)
        return out

    def recover(self, live: set[int], committed_end: Callable[[int, str], int]) -> Counter:
        """After a crash: drop folders of videos no longer in the records, cut torn tails; counts what it fixed."""
        repaired: Counter = Counter()
        for vid, folder in self.video_dirs().items():
            if vid not in live:
                self.drop_video(vid)
                repaired["orphan_shard_dirs"] += 1
                continue
            for path in folder.glob("*.tok"):
                if self.truncate(vid, path.stem, committed_end(vid, path.stem)):
                    repaired["torn_shard_tails"] += 1
        return repaired

    def drop_video(self, vid: int) -> None:
        """Delete a video's shard folder (after its records are gone from SQLite); open maps stay valid."""
        shutil.rmtree(self.root / f"v{vid}", ignore_errors=True)

    def video_dirs(self) -> dict[int, Path]:
        if not self.root.exists():
            return {}
        return {int(p.name[1:]): p for p in self.root.iterdir() if p.is_dir() and p.name[1:].isdigit()}

    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*.tok")) if self.root.exists() else 0
