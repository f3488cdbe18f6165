"""Checks on what callers hand the bank: a batch of clips and query vectors, refused before anything is written.

A prepared clip carries what the shards and SQLite store: its video's row id, float32 vectors, token bytes, meta JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from longwatch.memory.records import EVIDENCE_KINDS, BankInputError, ClipRecord, Evidence
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
    evidence: list[tuple[str, float, float, str, str, str]]  # (kind, t0, t1, text, context, meta JSON) rows
    evidence_vectors: np.ndarray  # float32 [len(evidence), D], row i belongs to evidence[i]


EVIDENCE = "evidence"  # the `vectors` key of a clip's evidence rows; never a clip vector space
UNIT_NORM_TOL = 1e-2  # evidence scores are reported as cosines, so stored rows must be unit length


def prepare_batch(items, vid_of: Callable[[str], int], dims: Mapping[str, int],
                  evidence_dim: int | None) -> tuple[list[PreparedClip], dict[str, int], int | None]:
    """Validate everything before anything is written: a refused batch leaves the bank untouched.

    `vid_of` maps a video id to its row id (refusing unknown videos); `dims` are the spaces the bank has,
    `evidence_dim` the dimension of its evidence vectors (None before the first). Returns the prepared clips,
    the dimension of each space this batch creates, and the evidence dimension after this batch.
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
        vectors = dict(vectors or {})
        evidence_vectors = vectors.pop(EVIDENCE, None)
        for space, v in vectors.items():
            check_space(space)
            vecs[space] = check_vector(v, space, dims, new_dims, where)
        toks = {check_kind(kind): as_token_bytes(kind, x) for kind, x in (tokens or {}).items()}
        evidence = [check_evidence(e, f"{where}, evidence {j}") for j, e in enumerate(record.evidence)]
        evidence_vectors = check_evidence_vectors(evidence_vectors, len(evidence), evidence_dim, where)
        if len(evidence):
            evidence_dim = evidence_vectors.shape[1]
        prepared.append(PreparedClip(record, vid, vecs, toks, meta, evidence, evidence_vectors))
    return prepared, new_dims, evidence_dim


def check_evidence(e, where: str) -> tuple[str, float, float, str, str, str]:
    """One Evidence as the row the bank stores: (kind, t0, t1, text, context, meta JSON)."""
    if not isinstance(e, Evidence):
        raise BankInputError(f"{where}: expected an Evidence, got {type(e).__name__}")
    if e.kind not in EVIDENCE_KINDS:
        raise BankInputError(f"{where}: kind {e.kind!r} is not one of {EVIDENCE_KINDS}")
    try:
        t0, t1 = float(e.t0), float(e.t1)
    except (TypeError, ValueError):
        raise BankInputError(f"{where}: times t0={e.t0!r}, t1={e.t1!r} are not numbers") from None
    if not (math.isfinite(t0) and math.isfinite(t1) and t0 <= t1):
        raise BankInputError(f"{where}: times t0={e.t0}, t1={e.t1}; need finite t0 <= t1 (seconds)")
    for name in ("text", "context"):
        if not isinstance(getattr(e, name), str):
            raise BankInputError(f"{where}: {name} must be a str, got {type(getattr(e, name)).__name__}")
    if not isinstance(e.meta, dict):
        raise BankInputError(f"{where}: meta must be a dict, got {type(e.meta).__name__}")
    try:
        meta = json.dumps(e.meta)
    except (TypeError, ValueError) as err:
        raise BankInputError(f"{where}: meta is not JSON-serialisable ({err})") from err
    return e.kind, t0, t1, e.text, e.context, meta


def check_evidence_vectors(v, n: int, dim: int | None, where: str) -> np.ndarray:
    """`vectors["evidence"]` as float32 [n, D]: one finite unit-length row per Evidence, D the bank's dimension."""
    if v is None:
        if n:
            raise BankInputError(f"{where}: {n} evidence entries but no vectors['evidence'] (need one "
                                 f"L2-normalised row per entry, shape [{n}, D])")
        return np.zeros((0, dim or 0), np.float32)
    try:
        a = np.asarray(v, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise BankInputError(f"{where}: vectors['evidence'] is not numeric ({e})") from e
    if a.ndim != 2 or a.shape[0] != n or (n and a.shape[1] == 0):
        raise BankInputError(f"{where}: vectors['evidence'] has shape {a.shape}; expected [{n}, D], one row "
                             f"per entry of record.evidence ({n})")
    if n and dim is not None and a.shape[1] != dim:
        raise BankInputError(f"{where}: evidence vectors are {a.shape[1]}-d, but this bank's evidence vectors "
                             f"are {dim}-d. Use the same embedder.")
    if not np.isfinite(a).all():
        raise BankInputError(f"{where}: vectors['evidence'] contains NaN or inf; refusing to store it")
    norms = np.linalg.norm(a, axis=1)
    if n and np.abs(norms - 1).max() > UNIT_NORM_TOL:
        bad = int(np.argmax(np.abs(norms - 1)))
        raise BankInputError(f"{where}: evidence vector {bad} has length {norms[bad]:.4g}; rows must be "
                             f"L2-normalised (scores are reported as cosines)")
    return a


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
