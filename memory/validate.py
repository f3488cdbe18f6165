"""Checks on what callers hand the bank: a batch of clips and query vectors, refused before anything is written.

A prepared clip carries what the shards and SQLite store: its video's row id, float32 vectors, token bytes, meta JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from longwatch.memory.records import BankInputError, ClipRecord
from longwatch.memory.shards import as_token_bytes, check_kind
from longwatch.memory.store import check_space


@dataclass
class PreparedClip:
    """One validated clip: `tokens[kind]` is (raw bytes, n, d, dtype name) as the shards store it."""

    record: ClipRecord
    vid: int
    vectors: dict[str, np.ndarray]
    tokens: dict[str, tuple[bytes, int, int, str]]
    meta: str


def prepare_batch(items, vid_of: Callable[[str], int],
                  dims: Mapping[str, int]) -> tuple[list[PreparedClip], dict[str, int]]:
    """Validate everything before anything is written: a refused batch leaves the bank untouched.

    `vid_of` maps a video id to its row id (refusing unknown videos); `dims` are the spaces the bank has.
    Returns the prepared clips and the dimension of each space this batch creates.
    """
    prepared, new_dims, seen = [], {}, set()
    for item in items:
        record, vectors, tokens = item
        if not isinstance(record, ClipRecord):
            raise TypeError(f"expected a ClipRecord, got {type(record).__name__}")
        vid, where = vid_of(record.video_id), f"clip {record.clip_index} of {record.video_id!r}"
        key = (vid, int(record.clip_index))
        if key in seen:
            raise BankInputError(f"{where} appears twice in one batch")
        seen.add(key)  # a clip already committed is caught by the UNIQUE constraint inside the transaction
        if not (math.isfinite(record.t0) and math.isfinite(record.t1) and record.t0 <= record.t1):
            raise BankInputError(f"{where} has times t0={record.t0}, t1={record.t1}; need finite t0 <= t1")
        try:
            meta = json.dumps(record.meta)
        except (TypeError, ValueError) as e:
            raise BankInputError(f"{where}: meta is not JSON-serialisable ({e})") from e
        vecs = {}
        for space, v in (vectors or {}).items():
            check_space(space)
            vecs[space] = check_vector(v, space, dims, new_dims, where)
        toks = {check_kind(kind): as_token_bytes(kind, x) for kind, x in (tokens or {}).items()}
        prepared.append(PreparedClip(record, vid, vecs, toks, meta))
    return prepared, new_dims


def check_vector(v, space: str, dims: Mapping[str, int], new_dims: dict[str, int] | None,
                 where: str) -> np.ndarray:
    """`v` as a finite float32 [D] of the space's dimension. With `new_dims` (a batch being prepared) an unknown
    space takes this vector's dimension there; without it (a query) an unknown space is refused."""
    try:
        a = np.asarray(v, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise BankInputError(f"{where}: vector for space {space!r} is not numeric ({e})") from e
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 1 or a.shape[0] == 0:
        raise BankInputError(f"{where}: vector for space {space!r} has shape {a.shape}; expected [D]")
    dim = dims.get(space) or (new_dims or {}).get(space)
    if dim is None and new_dims is not None:
        new_dims[space] = dim = a.shape[0]
    if dim is None:
        raise BankInputError(f"no vectors in space {space!r} (spaces: {sorted(dims) or 'none yet'})")
    if a.shape[0] != dim:
        raise BankInputError(f"{where}: vector for space {space!r} has dim {a.shape[0]}, but this bank's "
                             f"{space!r} vectors are {dim}-d. Use the same embedder, or another space name.")
    if not np.isfinite(a).all():
        raise BankInputError(f"{where}: vector for space {space!r} contains NaN or inf; refusing to store it")
    return a
