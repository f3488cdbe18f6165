"""Time in a live session: the reconnect schedule (exponential backoff with jitter) and the session timeline.

The timeline turns per-connection pts into one session time that never goes backwards, across reconnects and wraps.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Reconnect schedule: attempt k waits min(max_delay, base * factor**k) * (1 ± jitter) seconds.

    Gives up after `max_attempts` failed attempts or once the outage would exceed `max_outage` seconds
    (either may be None for "never"). Jitter spreads reconnect storms when many clients lose one server.
    """

    base: float = 0.5
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.1
    max_attempts: int | None = 10
    max_outage: float | None = 300.0

    def __post_init__(self) -> None:
        if self.base <= 0 or self.max_delay <= 0:
            raise ValueError(f"backoff base and max_delay must be positive, got {self.base}, {self.max_delay}")
        if self.factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"backoff jitter must be in [0, 1), got {self.jitter}")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError(f"max_attempts must be >= 0 or None, got {self.max_attempts}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before reconnect attempt number `attempt` (0-based)."""
        if self.factor > 1 and attempt > math.log(self.max_delay / self.base, self.factor):
            d = self.max_delay  # also avoids float overflow of factor**attempt on endless outages
        else:
            d = min(self.max_delay, self.base * self.factor**attempt)
        return d * (1.0 + self.jitter * rng.uniform(-1.0, 1.0))


class _Timeline:
    """Maps per-connection pts to one session time that starts at 0 and strictly increases.

    Within a connection t follows pts. After a reconnect, a pts reset, or a 33-bit MPEG-TS wrap (26.5 h),
    t continues from the previous frame by the wall-clock gap, so times never go backwards or collide.
    With `fixed` (a finite file served over HTTP) t is always the file's own time: a reconnect re-reads the same
    file, so its frames keep their times and the ones already delivered are dropped (place returns None).
    """

    MIN_STEP = 1e-3

    def __init__(self, fixed: bool = False) -> None:
        self.fixed = fixed
        self.offset: float | None = None
        self.last_t: float | None = None
        self.last_wall = 0.0

    def new_connection(self) -> None:
        if not self.fixed:
            self.offset = None

    def place(self, pts_time: float | None, wall: float) -> float | None:
        if self.fixed and self.last_t is not None and self.offset is not None:
            if pts_time is None or pts_time + self.offset <= self.last_t:
                return None
            t = pts_time + self.offset
        elif self.last_t is None:
            t = 0.0
            self.offset = None if pts_time is None else -pts_time
        elif pts_time is None or self.offset is None or pts_time + self.offset <= self.last_t:
            t = self.last_t + max(wall - self.last_wall, self.MIN_STEP)
            self.offset = None if pts_time is None else t - pts_time
        else:
            t = pts_time + self.offset
        self.last_t, self.last_wall = t, wall
        return t
