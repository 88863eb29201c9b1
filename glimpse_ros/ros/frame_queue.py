"""A small bounded drop-oldest queue between the subscription callback and the inference thread."""

from __future__ import annotations

import collections
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    """Bounded FIFO; ``put`` on a full queue discards the oldest item and reports it.

    A camera keeps producing frames whatever the recognizer's speed: the freshest frames are the
    useful ones, so when inference falls behind the oldest waiting frame is dropped (and counted by
    the caller).
    """

    def __init__(self, maxsize: int) -> None:
        """Create an empty queue holding at most ``maxsize`` items."""
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self._items: collections.deque[T] = collections.deque()
        self._maxsize = maxsize
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: T) -> int:
        """Append ``item``; return how many old items were dropped to make room (0 or more)."""
        with self._cond:
            dropped = 0
            while len(self._items) >= self._maxsize:
                self._items.popleft()
                dropped += 1
            self._items.append(item)
            self._cond.notify()
            return dropped

    def get(self, timeout: float | None = None) -> T | None:
        """Pop the oldest item, waiting up to ``timeout`` s; None on timeout or when closed."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def clear(self) -> int:
        """Drop everything waiting; return how many items were discarded."""
        with self._cond:
            n = len(self._items)
            self._items.clear()
            return n

    def close(self) -> None:
        """Wake up waiting consumers for shutdown."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        """Number of waiting items."""
        with self._cond:
            return len(self._items)
