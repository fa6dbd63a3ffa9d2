"""Supervised tasks: named, restarted with backoff when they crash, cancelled on shutdown.

``Supervisor.spawn(name, factory)`` runs ``await factory()`` as an asyncio task
named ``name``. If it raises, the error is logged with the component name and a
traceback, counted (``edged_component_restarts_total``) and the component is
started again after an exponential backoff (:class:`~edged.core.backoff.Backoff`,
``pipeline.restart_backoff_min_s`` .. ``restart_backoff_max_s``, 20 % jitter; each
component counts its own failures, reset once it ran ``healthy_after_s``). A
component that returns normally is done. A component that raises ConfigError
(e.g. a camera refusing a configured setting) is not restarted — restarting
cannot fix a configuration — but stopped with one log line naming it, recorded in
:attr:`Supervisor.failed` and reported through ``on_failed``. ``await supervisor.stop()`` cancels
everything still running and waits for it.

This is the daemon's crash layer, the outermost retry: it restarts a component
that raised. Sources retry their own device faults below it (GenICam: in-process
reopen, then a fresh acquisition process; OpenCV: reopen every ``reconnect_s``)
and raise out of ``read()`` only for what those layers cannot fix, so no fault
is retried by more than two layers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from edged.core.backoff import Backoff
from edged.core.errors import ConfigError

log = logging.getLogger("edged.supervisor")

Factory = Callable[[], Awaitable[None]]


RESTART_JITTER = 0.2


class Supervisor:
    """Owns the daemon's long-running tasks.

    ``backoff`` is the template each component's restarts follow (each component
    gets a :meth:`~edged.core.backoff.Backoff.fresh` copy); a component that ran
    ``healthy_after_s`` before it crashed starts again from the shortest delay.
    """

    def __init__(
        self,
        *,
        backoff: Backoff | None = None,
        healthy_after_s: float = 60.0,
        on_restart: Callable[[str, BaseException], None] | None = None,
        on_failed: Callable[[str, ConfigError], None] | None = None,
    ) -> None:
        self.backoff = backoff or Backoff(0.5, 30.0, jitter=RESTART_JITTER)
        self.healthy_after_s = healthy_after_s
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
        backoff = self.backoff.fresh()
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
                if time.monotonic() - started >= self.healthy_after_s:
                    backoff.reset()
                self.restarts[name] = self.restarts.get(name, 0) + 1
                delay = backoff.next_delay_s()
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
