"""The prepared-reference cache of the LTU comparison services.

LTU clients usually send one golden image with many queries. Preparing that
reference (decode, working-size channels, registration pyramid, variation model)
is most of a ``differences`` request, so the prepared result is kept, keyed by the
SHA-256 of the reference's encoded bytes plus every option that shapes the
preparation (the caller builds the key). A client that sends the same bytes again
skips their decode and preparation; different bytes — even of the same picture —
are a different entry.

The cache lives on the event loop (no locks): lookups and inserts happen there,
the preparation runs in the worker pool. Two requests that bring the same new
reference at once share one preparation. It is bounded by
``http.reference_cache_entries`` and ``http.reference_cache_bytes`` (least recently
used goes first; an entry larger than the byte bound is used once and not kept),
and counts hits, misses and evictions in the runtime's metrics.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from edged.runtime.metrics import Metrics

V = TypeVar("V")


def digest(data: bytes) -> str:
    """The SHA-256 of ``data`` as hex (run it off the loop for large bodies: hashlib
    releases the GIL)."""
    return hashlib.sha256(data).hexdigest()


def nbytes_of(value: object) -> int:
    """Bytes held by the NumPy arrays reachable from ``value`` through dataclass
    fields, mappings, lists and tuples (each array counted once)."""
    seen: set[int] = set()
    total = 0
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            total += item.nbytes
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return total


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    nbytes: int


class PreparedCache(Generic[V]):
    """A least-recently-used cache bounded in entries and bytes, with single-flight
    creation. ``max_entries=0`` or ``max_bytes=0`` keeps nothing (every call prepares)."""

    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        metrics: Metrics | None = None,
        size_of: Callable[[V], int] = nbytes_of,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._metrics = metrics
        self._size_of = size_of
        self._entries: collections.OrderedDict[Hashable, _Entry[V]] = collections.OrderedDict()
        self._pending: dict[Hashable, asyncio.Future[V]] = {}
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        if metrics is not None:
            metrics.reference_cache_entries.set_function(lambda: len(self._entries))
            metrics.reference_cache_bytes.set_function(lambda: self._bytes)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    @property
    def nbytes(self) -> int:
        """Bytes held by the kept entries."""
        return self._bytes

    def lookup(self, key: Hashable) -> V | None:
        """The kept value for ``key`` (counted as a hit), or None (not counted: follow
        with :meth:`get`, which counts the miss or the shared preparation)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        self._count("hit")
        return entry.value

    async def get(self, key: Hashable, prepare: Callable[[], Awaitable[V]]) -> tuple[V, bool]:
        """``(value, hit)`` for ``key``: kept, being prepared for another request (both a
        hit), or prepared now by ``await prepare()`` (a miss; a failure is not kept, the
        next call tries again)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self._count("hit")
            return entry.value, True
        pending = self._pending.get(key)
        if pending is not None:
            self._count("hit")  # shares the preparation under way
            return await asyncio.shield(pending), True
        self._count("miss")
        task = asyncio.ensure_future(prepare())  # not cancelled with this request
        self._pending[key] = task
        task.add_done_callback(lambda t: self._settle(key, t))
        return await asyncio.shield(task), False

    def _settle(self, key: Hashable, task: asyncio.Future[V]) -> None:
        del self._pending[key]
        if task.cancelled() or task.exception() is not None:
            return  # retrieved: other waiters get the error through their own await
        value = task.result()
        size = self._size_of(value)
        if self.max_entries <= 0 or size > self.max_bytes:
            return
        self._entries[key] = _Entry(value, size)
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._bytes -= old.nbytes
            self.evictions += 1
            if self._metrics is not None:
                self._metrics.reference_cache_evictions.inc()

    def _count(self, result: str) -> None:
        if result == "hit":
            self.hits += 1
        else:
            self.misses += 1
        if self._metrics is not None:
            self._metrics.reference_cache_requests.labels(result).inc()
