"""One controllable clock shared by every mock and by the in-process reference broker.

Scenarios never sleep to wait for an expiry: they advance this clock. It runs with real time
plus an offset (so lifetimes and logs look natural) and can be frozen for exact arithmetic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Clock:
    """Wall-clock time plus a controllable offset; ``now()`` is what every component reads."""

    def __init__(self, *, frozen_at: float | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen_at = frozen_at
        self._local = threading.local()

    def now(self) -> float:
        """Current sandbox time in seconds since the epoch (plus this thread's skew, if any)."""
        skew: float = getattr(self._local, "skew", 0.0)
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at + skew
            return time.time() + self._offset + skew

    @contextmanager
    def skewed(self, seconds: float) -> Iterator[None]:
        """Within this block, on this thread only, time reads ``seconds`` off.

        The fault engine uses it to give one tenant a skewed clock while the request it
        serves runs, leaving every other tenant and the broker on the shared time.
        """
        previous: float = getattr(self._local, "skew", 0.0)
        self._local.skew = previous + seconds
        try:
            yield
        finally:
            self._local.skew = previous

    def __call__(self) -> float:
        return self.now()

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset if self._frozen_at is None else self._frozen_at - time.time()

    def advance(self, seconds: float) -> float:
        """Move time forward (or back, with a negative value); returns the new ``now()``."""
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds
        return self.now()

    def set(self, epoch_seconds: float) -> float:
        """Jump to an absolute time; the clock keeps running (or stays frozen) from there."""
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at = epoch_seconds
            else:
                self._offset = epoch_seconds - time.time()
        return self.now()

    def reset(self) -> None:
        """Back to real time (offset 0); a frozen clock is frozen at the real current time."""
        with self._lock:
            self._offset = 0.0
            if self._frozen_at is not None:
                self._frozen_at = time.time()

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Stop time at ``now()`` for the block; only ``advance``/``set`` move it meanwhile.

        Scenarios that control the clock run inside this, so their arithmetic is exact however
        slow the machine is: a step that leaves a token 10 s to live must not find it expired
        because the steps in between took 11 s of real time. Afterwards the clock runs again
        from where the block left it. A clock that was frozen already stays frozen.
        """
        with self._lock:
            was_frozen = self._frozen_at is not None
            if not was_frozen:
                self._frozen_at = time.time() + self._offset
        try:
            yield
        finally:
            if not was_frozen:
                with self._lock:
                    assert self._frozen_at is not None
                    self._offset = self._frozen_at - time.time()
                    self._frozen_at = None

    def snapshot(self) -> dict[str, float | bool]:
        return {"now": self.now(), "offset": self.offset, "frozen": self._frozen_at is not None}
