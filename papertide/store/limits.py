"""Rate-limit state that every process of a site shares: one small JSON state per key.

A rate limiter (log-ins, sign-ups and subscriptions in :mod:`papertide.web.auth`, the
JSON API's GCRA in :mod:`papertide.web.security`) keeps its own state per key — a few
failure times, a "theoretical arrival time" — and decides from it. With several worker
processes or app servers that state must be counted once for all of them, so it lives
in the store (table ``rate_limits``, migration m004) and :class:`Limits` changes it:

- :meth:`Limits.update` reads one key's state, asks the limiter's *step* what to do,
  and writes what the step returns, all in one transaction with the row locked, so
  concurrent requests of every process count exactly. The step is a pure function of
  the current state (None when there is none or it has expired); it may be called more
  than once when two processes create the same key at the same moment.
- Each row carries ``expires`` (unix time) after which it means nothing; such rows read
  as absent and are deleted a bounded batch at a time (:meth:`Limits.sweep`, run by the
  SQL part every :data:`SWEEP_EVERY` updates), so the table stays bounded however many
  keys an attacker invents.
- Time is the caller's ``now`` (unix seconds from the limiter's injectable clock); the
  store never reads a clock, so tests move time by hand.

:class:`MemoryLimits` is the same interface in one process's memory (bounded by
``max_keys``): limiters built without a store use it. The SQL implementation is
:class:`papertide.store.limits_sql.SQLLimits`, reached as ``store.limits``.
A database failure raises :class:`LimitsUnavailable`; the limiter decides whether
that refuses the request or lets it through (see :mod:`papertide.web.auth`).
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from papertide.errors import StoreError

R = TypeVar("R")

KEY_MAX = 300  # characters in a key: 'login:user:' + a 64-character name fits many times over
SWEEP_EVERY = 64  # updates between two sweeps of expired rows (per process)
SWEEP_BATCH = 200  # expired rows deleted at most per sweep: more than the 64 updates can add


class LimitsUnavailable(StoreError):
    """The rate-limit state could not be read or written (the database failed)."""


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()  # a Decision's state that leaves the stored row as it is


@dataclass(frozen=True)
class Decision(Generic[R]):
    """What a limiter's step decided: its ``result`` for the caller, and the key's new
    ``state`` (JSON data; None deletes it, :data:`KEEP` writes nothing) that matters
    until ``expires`` (unix time)."""

    result: R
    state: Any = KEEP
    expires: float = 0.0


Step = Callable[[Any], "Decision[R]"]


def check_key(key: object) -> str:
    """``key`` when it is a non-empty string of at most :data:`KEY_MAX` characters."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"a rate-limit key must be a non-empty string, not {key!r}")
    if len(key) > KEY_MAX:
        raise ValueError(f"a rate-limit key is at most {KEY_MAX} characters, not {len(key)}")
    return key


def check_time(now: object) -> float:
    """``now`` as a float, when it is a finite number (unix seconds)."""
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise ValueError(f"a rate-limit time must be a finite number of seconds, not {now!r}")
    return float(now)


def check_decision(decision: object) -> Decision:
    if not isinstance(decision, Decision):
        raise TypeError(f"a rate-limit step must return a Decision, not {type(decision).__name__}")
    if decision.state is not KEEP and decision.state is not None:
        check_time(decision.expires)
    return decision


class Limits(ABC):
    """Rate-limit state per key (see the module's docstring)."""

    @abstractmethod
    def update(self, key: str, now: float, step: Step[R]) -> R:
        """Apply ``step`` to ``key``'s live state (None when absent or expired) atomically;
        store what it decides and return its result."""

    @abstractmethod
    def state(self, key: str, now: float) -> Any:
        """``key``'s live state, or None (absent or expired at ``now``)."""

    @abstractmethod
    def forget(self, key: str) -> None:
        """Delete ``key``'s state (nothing happens for an unknown key)."""

    @abstractmethod
    def sweep(self, now: float, limit: int | None = None) -> int:
        """Delete at most ``limit`` (default :data:`SWEEP_BATCH`) rows expired at ``now``; how many went."""

    @abstractmethod
    def count(self, prefix: str = "") -> int:
        """How many keys starting with ``prefix`` have a row (expired ones not swept yet included)."""


class MemoryLimits(Limits):
    """:class:`Limits` in this process's memory, thread-safe, at most ``max_keys`` keys.

    Keys are kept in the order of their last change; a change drops the keys at the front
    that have expired, and beyond ``max_keys`` the least recently changed ones.
    """

    def __init__(self, max_keys: int = 50_000) -> None:
        if not isinstance(max_keys, int) or max_keys < 1:
            raise ValueError(f"MemoryLimits needs max_keys >= 1, not {max_keys!r}")
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._rows: OrderedDict[str, tuple[Any, float]] = OrderedDict()  # key -> (state, expires)

    def _live(self, key: str, now: float) -> Any:
        row = self._rows.get(key)
        return row[0] if row is not None and row[1] > now else None

    def update(self, key: str, now: float, step: Step[R]) -> R:
        key, now = check_key(key), check_time(now)
        with self._lock:
            decision = check_decision(step(self._live(key, now)))
            if decision.state is None:
                self._rows.pop(key, None)
            elif decision.state is not KEEP:
                self._rows[key] = (decision.state, float(decision.expires))
                self._rows.move_to_end(key)
                self._evict(now)
            return decision.result

    def _evict(self, now: float) -> None:
        while self._rows:
            key, (_, expires) = next(iter(self._rows.items()))
            if len(self._rows) <= self.max_keys and expires > now:
                break
            del self._rows[key]

    def state(self, key: str, now: float) -> Any:
        key, now = check_key(key), check_time(now)
        with self._lock:
            return self._live(key, now)

    def forget(self, key: str) -> None:
        key = check_key(key)
        with self._lock:
            self._rows.pop(key, None)

    def sweep(self, now: float, limit: int | None = None) -> int:
        now, limit = check_time(now), SWEEP_BATCH if limit is None else max(0, int(limit))
        with self._lock:
            gone = [k for k, (_, expires) in self._rows.items() if expires <= now][:limit]
            for k in gone:
                del self._rows[k]
            return len(gone)

    def count(self, prefix: str = "") -> int:
        with self._lock:
            return sum(1 for k in self._rows if k.startswith(prefix))
