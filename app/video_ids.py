"""The one rule that names a video file in a bank, shared by the API, the CLI, the UI, batch and Ray workers.

Naming the same bytes the same way everywhere is what lets a batch skip a file that `longwatch ingest` already did.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path


def video_id_for(path: str | Path) -> str:
    """A readable, stable id: the file name's slug plus a fingerprint of size and head/tail bytes.

    The same file uploaded twice maps to the same id, so the second ingest resumes instead of duplicating;
    hashing only 64 KiB from each end keeps this instant for hour-long files.
    """
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha1(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(65536))
        f.seek(max(0, size - 65536))
        h.update(f.read(65536))
    return f"{slug(path.stem)}-{h.hexdigest()[:6]}"


def slug(stem: str) -> str:
    """The readable part of an id: lowercase letters and digits joined by '-', at most 40 characters."""
    return re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:40] or "video"
