"""Switchable, deterministic failure modes for the emulator's Table API.

A :class:`Faults` value describes what should go wrong (rate limits, 5xx, an HTML
"hibernating" page, slow answers, cancelled transactions, rows edited between pages,
duplicated rows, hidden rows). :class:`FaultState` counts Table API requests per fault and
decides when each one fires, so a given request sequence always fails the same way.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class RateLimitFault:
    every: int = 1
    retry_after: int = 1
    times: int | None = None


@dataclass
class ServerErrorFault:
    every: int = 1
    status: int = 503
    times: int | None = None


@dataclass
class HtmlFault:
    every: int = 1
    times: int | None = None


@dataclass
class SlowFault:
    seconds: float = 0.1
    every: int = 1
    times: int | None = None


@dataclass
class TransactionCancelledFault:
    max_limit: int = 100
    times: int | None = None
    # 200: a query that ran too long comes back cut off with the error appended (KB1297438);
    # 500: the transaction was cancelled while still queued.
    status: int = 200


@dataclass
class EditBetweenPagesFault:
    rows: int = 1
    table: str | None = None  # None: whichever table the page came from
    every: int = 1
    times: int | None = None


@dataclass
class DuplicatesFault:
    every: int = 1
    times: int | None = None


@dataclass
class HiddenFault:
    modulo: int = 11


_FAULT_TYPES: dict[str, type] = {
    "rate_limit": RateLimitFault,
    "server_error": ServerErrorFault,
    "html": HtmlFault,
    "slow": SlowFault,
    "transaction_cancelled": TransactionCancelledFault,
    "edit_between_pages": EditBetweenPagesFault,
    "duplicates": DuplicatesFault,
    "hidden": HiddenFault,
}


@dataclass
class Faults:
    """Which faults are on; ``None`` means off. Build from JSON with :meth:`from_dict`."""

    rate_limit: RateLimitFault | None = None
    server_error: ServerErrorFault | None = None
    html: HtmlFault | None = None
    slow: SlowFault | None = None
    transaction_cancelled: TransactionCancelledFault | None = None
    edit_between_pages: EditBetweenPagesFault | None = None
    duplicates: DuplicatesFault | None = None
    hidden: HiddenFault | None = None
    seed: int = 0  # seeds the choices of edit_between_pages and duplicates

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Faults:
        """Build from ``{"rate_limit": {"every": 3, ...}, ...}``; unknown keys are errors."""
        data = dict(data or {})
        seed = int(data.pop("seed", 0))
        built: dict[str, Any] = {}
        for name, options in data.items():
            fault_type = _FAULT_TYPES.get(name)
            if fault_type is None:
                raise ValueError(f"unknown fault {name!r}; known: {sorted(_FAULT_TYPES)}")
            if options is None or options is False:
                continue
            if options is True:
                options = {}
            if not isinstance(options, dict):
                raise ValueError(f"fault {name!r} needs an object of options")
            allowed = {f.name for f in fields(fault_type)}
            unknown = set(options) - allowed
            if unknown:
                raise ValueError(f"fault {name!r}: unknown options {sorted(unknown)}")
            fault = fault_type(**options)
            for positive in ("every", "modulo"):
                if getattr(fault, positive, 1) < 1:
                    raise ValueError(f"fault {name!r}: {positive} must be >= 1")
            built[name] = fault
        return cls(seed=seed, **built)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            name: asdict(value)
            for name in _FAULT_TYPES
            if (value := getattr(self, name)) is not None
        }
        if self.seed:
            result["seed"] = self.seed
        return result


@dataclass
class _Counter:
    seen: int = 0
    fired: int = 0


@dataclass
class FaultState:
    """The counters and the seeded random source that make a :class:`Faults` deterministic.

    Every fault with ``every`` counts the Table API requests it sees independently, so
    ``{"rate_limit": {"every": 3}, "server_error": {"every": 5}}`` answers request 3 with
    a 429 and request 5 with a 503 no matter what else is switched on. When two faults are
    due on the same request the first in the order slow, rate_limit, server_error, html
    wins (slow only delays, so it combines with any other).
    """

    faults: Faults
    counters: dict[str, _Counter] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.faults.seed)  # noqa: S311 - simulation, not security
        self.counters = {name: _Counter() for name in _FAULT_TYPES}

    def due(self, name: str) -> bool:
        """Record one more request for ``name``; True when the fault is due on it."""
        fault = getattr(self.faults, name)
        if fault is None:
            return False
        with self.lock:
            counter = self.counters[name]
            counter.seen += 1
            times = getattr(fault, "times", None)
            if times is not None and counter.fired >= times:
                return False
            return counter.seen % getattr(fault, "every", 1) == 0

    def mark_fired(self, name: str) -> None:
        with self.lock:
            self.counters[name].fired += 1

    def count(self, name: str) -> bool:
        """``due`` and, when due, count it as fired."""
        if not self.due(name):
            return False
        self.mark_fired(name)
        return True

    def fire_unconditionally(self, name: str) -> bool:
        """For condition-triggered faults (transaction_cancelled): honour ``times`` only."""
        fault = getattr(self.faults, name)
        if fault is None:
            return False
        with self.lock:
            counter = self.counters[name]
            counter.seen += 1
            times = getattr(fault, "times", None)
            if times is not None and counter.fired >= times:
                return False
            counter.fired += 1
            return True

    def fired(self) -> dict[str, int]:
        with self.lock:
            return {name: c.fired for name, c in self.counters.items() if c.fired}
