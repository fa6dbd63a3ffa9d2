"""Supervised tasks: named, restarted with backoff when they crash, cancelled on shutdown.

``Supervisor.spawn(name, factory)`` runs ``await factory()`` as an asyncio task
named ``name``. If it raises, the error is logged with the component name and a
traceback, counted (``edged_component_restarts_total``) and the component is
started again after an exponential backoff (reset once it ran for a while). A
component that returns normally is done. A component that raises ConfigError
(e.g. a camera refusing a configured setting) is not restarted — restarting
cannot fix a configuration — but stopped with one log line naming it, recorded in
:attr:`Supervisor.failed` and reported through ``on_failed``. ``await supervisor.stop()`` cancels
everything still running and waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from edged.core.errors import ConfigError

log = logging.getLogger("edged.supervisor")

Factory = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: ``min_s * 2**n`` capped at ``max_s``."""

    min_s: float = 0.5
    max_s: float = 30.0
    healthy_after_s: float = 60.0

    def delay_s(self, failures: int) -> float:
        base = min(self.max_s, self.min_s * (2 ** max(0, failures - 1)))
        return base * (0.8 + 0.4 * random.random())


class Supervisor:
    """Owns the daemon's long-running tasks."""

    def __init__(
        self,
        *,
        backoff: Backoff | None = None,
        on_restart: Callable[[str, BaseException], None] | None = None,
        on_failed: Callable[[str, ConfigError], None] | None = None,
    ) -> None:
        self.backoff = backoff or Backoff()
        self._on_restart = on_restart
        self._on_failed = on_failed
        self.failed: dict[str, str] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.restarts: dict[str, int] = {}

    def spawn(self, name: str, factory: Factory, *, restart: bool = True) -> asyncio.Task[None]:
        if name in self._tasks and not self._tasks[name].done():
            msg = f"component {name!r} is already running"
            raise RuntimeError(msg)
        self.failed.pop(name, None)
        task = asyncio.create_task(self._run(name, factory, restart), name=name)
        self._tasks[name] = task
        return task

    async def _run(self, name: str, factory: Factory, restart: bool) -> None:
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await factory()
                log.debug("component %s finished", name)
                return
            except asyncio.CancelledError:
                raise
            except ConfigError as exc:
                self.failed[name] = str(exc)
                log.error(
                    "component %s stopped by a configuration error (not restarted: fix the "
                    "configuration): %s",
                    name,
                    exc,
                )
                if self._on_failed is not None:
                    self._on_failed(name, exc)
                return
            except Exception as exc:
                if not restart:
                    log.exception("component %s failed; not restarting", name)
                    raise
                if time.monotonic() - started >= self.backoff.healthy_after_s:
                    failures = 0
                failures += 1
                self.restarts[name] = self.restarts.get(name, 0) + 1
                delay = self.backoff.delay_s(failures)
                log.error(
                    "component %s crashed (%s: %s); restart %d in %.1f s",
                    name, type(exc).__name__, exc, self.restarts[name], delay,
                    exc_info=exc,
                )  # fmt: skip
                if self._on_restart is not None:
                    self._on_restart(name, exc)
                await asyncio.sleep(delay)

    def task(self, name: str) -> asyncio.Task[None] | None:
        return self._tasks.get(name)

    @property
    def names(self) -> list[str]:
        return [n for n, t in self._tasks.items() if not t.done()]

    async def cancel(self, *names: str) -> None:
        """Cancel the named tasks and wait for them to finish."""
        tasks = [self._tasks[n] for n in names if n in self._tasks]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def stop(self) -> None:
        """Cancel every task and wait for all of them."""
        await self.cancel(*list(self._tasks))
