"""A bounded frame queue between a live reader thread and a consumer, with an explicit overflow policy.

Memory stays bounded for any stream length: the queue never holds more than `maxsize` items.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, Literal, TypeVar

Policy = Literal["drop_oldest", "drop_newest", "block"]
POLICIES: tuple[str, ...] = ("drop_oldest", "drop_newest", "block")

Item = TypeVar("Item")


class Closed(Exception):
    """The queue was closed and holds nothing more."""


class DropQueue(Generic[Item]):
    """Bounded FIFO; when full, `put` drops the oldest item, drops the new one, or blocks, per `policy`.

    - "drop_oldest" (live default): the consumer always sees the freshest frames; stale ones are counted and lost.
    - "drop_newest": keeps what is queued, discards arrivals until there is room (keeps continuity of a burst).
    - "block": backpressure on the producer; nothing is lost (for recorded streams served faster than real time).
    """

    def __init__(self, maxsize: int, policy: Policy = "drop_oldest"):
        if maxsize < 1:
            raise ValueError(f"queue maxsize must be >= 1, got {maxsize}")
        if policy not in POLICIES:
            raise ValueError(f"unknown overflow policy {policy!r}; choose one of {', '.join(POLICIES)}")
        self.maxsize = maxsize
        self.policy = policy
        self.dropped = 0
        self.peak = 0  # most items ever held at once, to prove the bound in tests and dashboards
        self._items: deque[Item] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, item: Item) -> bool:
        """Queue `item`; False when it was not queued (dropped by "drop_newest", or the queue is closed)."""
        with self._cond:
            if self._closed:
                return False
            if len(self._items) >= self.maxsize:
                if self.policy == "drop_oldest":
                    self._items.popleft()
                    self.dropped += 1
                elif self.policy == "drop_newest":
                    self.dropped += 1
                    return False
                else:
                    self._cond.wait_for(lambda: self._closed or len(self._items) < self.maxsize)
                    if self._closed:
                        return False
            self._items.append(item)
            self.peak = max(self.peak, len(self._items))
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> Item | None:
        """Next item; None if `timeout` passed with nothing queued; raises Closed once closed and drained."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout):
                return None
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()  # a blocked producer may proceed
                return item
            raise Closed

    def close(self, discard: bool = False) -> None:
        """No more puts; `discard=True` also forgets queued items (a stop), else the consumer drains them (an end)."""
        with self._cond:
            self._closed = True
            if discard:
                self._items.clear()
            self._cond.notify_all()
