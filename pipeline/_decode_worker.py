"""A decoder in a separate process: probing untrusted files and decord batches run here, under a timeout.

A hang (decord on truncated files holds the GIL) or a native crash kills only this process; the caller gets a typed error.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time

# The protocol: one JSON line per request on stdin; one JSON line per reply on stdout, followed by
# `nbytes` raw bytes when the reply carries a payload (decoded frames).
_MEM_LIMIT = 8 << 30  # address space of the worker: a decompression bomb fails there, not in the caller


class WorkerTimeout(Exception):
    """The worker did not answer in time and was killed."""


class WorkerCrashed(Exception):
    """The worker process died (native crash, out of memory) while handling a request."""


class Worker:
    """A lazily started `python -m longwatch.pipeline._decode_worker` process; restarted after a timeout or crash.

    Spawned as a fresh interpreter (never forked), so it is safe after torch or threads are loaded in the caller.
    Not thread-safe on its own: callers hold `lock` around `call`.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._buf = bytearray()

    def _start(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen([sys.executable, "-m", "longwatch.pipeline._decode_worker"],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, close_fds=True)
            self._buf = bytearray()
        return self._proc

    def call(self, request: dict, timeout: float) -> tuple[dict, bytes | None]:
        """Send one request; return (reply, payload). Raises WorkerTimeout or WorkerCrashed."""
        proc = self._start()
        deadline = time.monotonic() + timeout
        try:
            proc.stdin.write((json.dumps(request) + "\n").encode())
            proc.stdin.flush()
            reply = json.loads(self._read_line(deadline))
            payload = self._read_exact(reply["nbytes"], deadline) if reply.get("nbytes") else None
        except WorkerTimeout:
            self.close()
            raise
        except (BrokenPipeError, EOFError, ValueError) as e:
            code = self.close()
            raise WorkerCrashed(_exit_description(code)) from e
        return reply, payload

    def _fill(self, deadline: float) -> None:
        fd = self._proc.stdout.fileno()
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise WorkerTimeout()
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            raise EOFError("worker closed its output")
        self._buf += chunk

    def _read_line(self, deadline: float) -> bytes:
        while (end := self._buf.find(b"\n")) < 0:
            self._fill(deadline)
        line = bytes(self._buf[:end])
        del self._buf[:end + 1]
        return line

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            self._fill(deadline)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def close(self) -> int | None:
        """Stop the process (killing it if it does not leave at once); returns its exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            return proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
        finally:
            proc.stdout.close()


def _exit_description(code: int | None) -> str:
    if code is None:
        return "the decoder process stopped"
    if code < 0:
        import signal

        try:
            return f"the decoder process was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the decoder process was killed by signal {-code}"
    return f"the decoder process exited with code {code}"


# ---- worker side ------------------------------------------------------------------------------------------


def _serve() -> None:
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the reply stream
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_MEM_LIMIT, _MEM_LIMIT))
    except (ImportError, ValueError, OSError):
        pass
    from longwatch.pipeline import _decode_ops

    state: dict = {}
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            reply, payload = _decode_ops.handle(request, state)
        except MemoryError:
            reply, payload = {"error": "memory", "message": "the decoder ran out of memory"}, None
        except Exception as e:  # reported to the caller, which maps it to a typed error naming the file
            reply, payload = {"error": "exception", "message": f"{type(e).__name__}: {e}"}, None
        if payload is not None:
            reply["nbytes"] = len(payload)
        out.write((json.dumps(reply) + "\n").encode())
        if payload is not None:
            out.write(payload)


if __name__ == "__main__":
    _serve()
