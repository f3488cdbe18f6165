"""The bank's durable side: SQLite schema and connection, the bank marker, and index cache files on disk.

SQLite (WAL) holds every record and every search vector; index files are caches stamped to detect staleness.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sqlite3
import struct
import zlib
from pathlib import Path

import numpy as np

from longwatch.memory.records import BankBusy, BankInputError
from longwatch.memory.shards import fsync_dir
from longwatch.errors import BankError

FORMAT = 1
MARKER = "longwatch-bank.json"
DB = "bank.sqlite"
SPACE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
CACHE_MAGIC = b"LWIDX1\n"
LOCK = "writer.lock"
# What a bank folder holds between its database's creation and its marker (lock and SQLite files only).
CREATING = {LOCK, DB, f"{DB}-wal", f"{DB}-shm", f"{DB}-journal"}
BUSY_TIMEOUT_S = 30  # how long a statement waits for SQLite locks another connection holds
AUTO_VACUUM_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('format', '1'), ('deletes', '0');
CREATE TABLE IF NOT EXISTS videos(
    vid INTEGER PRIMARY KEY AUTOINCREMENT, video_id TEXT NOT NULL UNIQUE, source TEXT NOT NULL,
    info TEXT NOT NULL, complete INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS clips(
    id INTEGER PRIMARY KEY AUTOINCREMENT, vid INTEGER NOT NULL REFERENCES videos(vid),
    clip_index INTEGER NOT NULL, t0 REAL NOT NULL, t1 REAL NOT NULL, caption TEXT NOT NULL,
    ocr_text TEXT NOT NULL, meta TEXT NOT NULL, UNIQUE(vid, clip_index));
CREATE INDEX IF NOT EXISTS clips_time ON clips(vid, t0, t1);
CREATE TABLE IF NOT EXISTS spaces(space TEXT PRIMARY KEY, dim INTEGER NOT NULL, n INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS tokens(
    id INTEGER NOT NULL, kind TEXT NOT NULL, vid INTEGER NOT NULL, offset INTEGER NOT NULL,
    nbytes INTEGER NOT NULL, n INTEGER NOT NULL, d INTEGER NOT NULL, dtype TEXT NOT NULL,
    PRIMARY KEY(id, kind)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tokens_video ON tokens(vid, kind);
CREATE TABLE IF NOT EXISTS gaps(vid INTEGER NOT NULL REFERENCES videos(vid), t0 REAL NOT NULL, t1 REAL NOT NULL,
    reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS gaps_video ON gaps(vid, t0);
CREATE TABLE IF NOT EXISTS evidence(
    id INTEGER PRIMARY KEY AUTOINCREMENT, vid INTEGER NOT NULL REFERENCES videos(vid),
    clip_id INTEGER NOT NULL REFERENCES clips(id), kind TEXT NOT NULL, t0 REAL NOT NULL, t1 REAL NOT NULL,
    text TEXT NOT NULL, context TEXT NOT NULL, meta TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS evidence_time ON evidence(vid, t0);
CREATE TABLE IF NOT EXISTS evidence_vec(id INTEGER PRIMARY KEY, vec BLOB NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS evidence_fts USING fts5(text, context, content='evidence', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS evidence_fts_add AFTER INSERT ON evidence BEGIN
    INSERT INTO evidence_fts(rowid, text, context) VALUES (new.id, new.text, new.context); END;
CREATE TRIGGER IF NOT EXISTS evidence_fts_drop AFTER DELETE ON evidence BEGIN
    INSERT INTO evidence_fts(evidence_fts, rowid, text, context) VALUES ('delete', old.id, old.text, old.context);
    END;
"""
# The evidence tables above came after format 1's first banks: a writer adds them to an older bank when it opens it
# (CREATE ... IF NOT EXISTS), a reader of a bank no writer has opened since sees no evidence (has_evidence()).
# Full text is external-content FTS5 kept by triggers, so a row and its index entry commit and delete together
# (SQLite 3.40 has no contentless-delete tables). unicode61 keeps letters+digits together ("QX2207", "2m") and
# splits on "." and ":", so a code like "4.2M" or "9:30" is matched as a phrase of its parts (see evidence.py).


def check_space(space: str) -> str:
    """Space names become table names (`vec_<space>`), so they are restricted to identifiers."""
    if not isinstance(space, str) or not SPACE_RE.match(space):
        raise BankInputError(f"vector space {space!r} is not a valid name; use letters, digits and '_' (e.g. 'text')")
    return space


def atomic_write(path: Path, chunks: list[bytes | memoryview]) -> None:
    """Temp file + fsync + rename + directory fsync: readers see the old file or the new one, never a mix."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def check_root(root: Path, create: bool, readonly: bool) -> bool:
    """Validate `root` as a bank folder (creating the folder when asked); True when the bank is new.

    The marker is written last (`write_marker`, once the schema is committed), so a folder holding only the
    bank's own files but no marker is a bank another process is creating right now, or whose creation crashed:
    a writer finishes it, a reader is told to wait.
    """
    if root.exists() and not root.is_dir():
        raise BankError(f"{root}: not a memory bank (found: a file, not a folder). Pass a folder path.")
    marker = root / MARKER
    if marker.exists():
        try:
            fmt = json.loads(marker.read_text())["format"]
        except (ValueError, KeyError, TypeError, OSError) as e:
            raise BankError(f"{root}: bank marker {MARKER} is unreadable ({e}). Restore it from a backup "
                            f"or move the folder aside and rebuild the bank.") from e
        if fmt != FORMAT:
            raise BankError(f"{root}: bank format {fmt} (this longwatch reads format {FORMAT}). "
                            f"Use the longwatch version that wrote it.")
        if not (root / DB).exists():
            raise BankError(f"{root}: bank marker found but {DB} is missing. Restore it or rebuild the bank.")
        return False
    found = sorted(p.name for p in root.iterdir()) if root.exists() else []
    if found and not set(found) <= CREATING:
        raise BankError(f"{root}: not a memory bank (found: {', '.join(found[:3])}{' ...' if len(found) > 3 else ''};"
                        f" no {MARKER}). Pass an empty folder, a new path, or the root of an existing bank.")
    if readonly or not create:
        if found:
            raise BankError(f"{root}: this bank is still being created (found: {', '.join(found)} but no {MARKER} "
                            f"yet). Try again in a moment; if it stays so, its creation was interrupted: open it "
                            f"once for writing (e.g. `longwatch ingest`) to finish it.")
        raise BankError(f"{root}: no memory bank here (found: {'an empty folder' if root.exists() else 'nothing'}). "
                        f"Create one with MemoryBank(root) first.")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BankError(f"{root}: cannot create a memory bank here ({e.strerror}). "
                        f"Choose a writable folder.") from e
    return True


def take_writer_lock(root: Path) -> int:
    """The bank's writer lock (flock on LOCK) as an open descriptor; closing it releases the lock."""
    try:
        fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise BankError(f"{root}: cannot write to this bank (found: {e.strerror} on {LOCK}). Open it with "
                        f"MemoryBank(root, readonly=True) to search it, or copy it to a writable folder.") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BankBusy(f"{root}: another writer holds this bank (found: {LOCK} locked by another process, "
                       f"e.g. a running `longwatch ingest`, `watch` or `serve`). Open it with readonly=True "
                       f"(or 'auto') to read while it writes, or wait for the writer to finish.") from None
    return fd


def write_marker(root: Path) -> None:
    """Mark a new bank ready for readers, after its schema is committed."""
    try:
        atomic_write(root / MARKER, [json.dumps({"format": FORMAT, "kind": "longwatch memory bank"}).encode()])
    except OSError as e:
        raise BankError(f"{root}: cannot create a memory bank here ({e.strerror}). "
                        f"Choose a writable folder.") from e


def connect(root: Path, readonly: bool, durable: bool) -> sqlite3.Connection:
    """Open the bank's SQLite file; a reader opens it read-only (immutable when the folder can't be written)."""
    path = root / DB
    try:
        if readonly:
            # WAL readers need the -shm file; in a folder nobody may write, the file cannot change anyway.
            immutable = "&immutable=1" if not os.access(root, os.W_OK) else ""
            conn = sqlite3.connect(f"file:{path}?mode=ro{immutable}", uri=True, isolation_level=None,
                                   check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        else:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
            # Must come before the first table exists (an older file is converted by its first delete).
            conn.execute(f"PRAGMA auto_vacuum={AUTO_VACUUM_INCREMENTAL}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")  # all tables at once, or none
        fmt = conn.execute("SELECT value FROM meta WHERE key='format'").fetchone()
    except sqlite3.DatabaseError as e:
        raise BankError(f"{path}: cannot read the bank's database ({e}). Restore it from a backup or "
                        f"rebuild the bank.") from e
    if fmt is None or int(fmt[0]) != FORMAT:
        raise BankError(f"{path}: database format {fmt} is not {FORMAT}. Use the longwatch version that wrote it.")
    return conn


def read_vectors(conn: sqlite3.Connection, space: str, dim: int, after: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(ids[N] int64, vecs[N, D] float32) of a space with id > after, in id order, read in large batches."""
    cur = conn.execute(f"SELECT id, vec FROM vec_{space} WHERE id > ? ORDER BY id", (after,))
    ids, parts = [], []
    while rows := cur.fetchmany(20_000):
        ids.extend(r[0] for r in rows)
        parts.append(np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim))
    vecs = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
    return np.asarray(ids, dtype=np.int64), vecs


def write_cache(path: Path, header: dict, payload: bytes | memoryview) -> None:
    """Index cache: magic, header length, JSON header (stamp, CRC of payload), payload."""
    header = dict(header, crc=zlib.crc32(payload), size=len(payload))
    head = json.dumps(header).encode()
    atomic_write(path, [CACHE_MAGIC, struct.pack("<Q", len(head)), head, payload])


def read_cache(path: Path) -> tuple[dict, memoryview]:
    """Header and payload of an index cache file; ValueError when truncated or corrupted."""
    data = path.read_bytes()
    if not data.startswith(CACHE_MAGIC) or len(data) < len(CACHE_MAGIC) + 8:
        raise ValueError("bad magic")
    (hlen,) = struct.unpack_from("<Q", data, len(CACHE_MAGIC))
    start = len(CACHE_MAGIC) + 8
    header = json.loads(data[start:start + hlen])
    payload = memoryview(data)[start + hlen:]  # no second copy of a GB-sized index
    if len(payload) != header["size"] or zlib.crc32(payload) != header["crc"]:
        raise ValueError(f"payload is {len(payload)} bytes / CRC mismatch (header says {header['size']} bytes)")
    return header, payload
