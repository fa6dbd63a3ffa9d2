"""Logging: one line per event on stderr (journald), text or JSON, with context, no storms.

``setup_logging(cfg)`` installs one handler on the root logger (calling it again,
e.g. on reload, replaces it: never duplicate lines). Each line carries the
``camera`` and ``recipe`` it concerns, taken from ``extra={"camera": ...}`` or
from the surrounding :func:`log_context` (a context variable, so it follows
``await`` and the worker pool, which copies the context into its threads)::

    with log_context(camera="line1", recipe="label"):
        log.warning("frame %d incomplete", seq)

Formats (``logging.format``):

- ``text`` (default): ``2024-05-01T12:00:00.123Z WARNING edged.pipeline
  [camera=line1 recipe=label] frame 7 incomplete``. When stderr is journald's
  stream (``$JOURNAL_STREAM``) the timestamp is left to the journal and the line
  starts with a syslog priority (``<4>``), so ``journalctl -p warning`` works.
- ``json``: ``{"ts": ..., "level": ..., "logger": ..., "msg": ..., "camera": ...,
  "recipe": ..., "exc": ...}`` plus any other ``extra=`` fields, one object a line
  (on journald's stream behind the same ``<N>`` priority, which journald strips).

A traceback stays on its event's line (JSON string, or `` | ``-joined in text).

Repeats: the first event with a given (logger, level, message text, camera,
recipe) is written; identical ones within ``repeat_window_s`` are counted, and a
summary line (``suppressed N repeats in the last 60 s of: ...``) follows when the
window ends — on the next such event, on any later line, or on
:func:`flush_suppressed` (the daemon calls it periodically and at exit). DEBUG
lines are never suppressed.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from edged.config import LoggingConfig

CONTEXT_FIELDS = ("camera", "recipe")
_MAX_TRACKED = 1024

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "edged_log_context", default=None
)

# Attributes every LogRecord has; anything else came in through ``extra=``.
_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add ``camera=`` / ``recipe=`` (or other) fields to every line logged inside."""
    current = _context.get() or {}
    merged = {**current, **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """Fields of ``record`` beyond the standard ones (``extra=`` and the log context)."""
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _RECORD_ATTRS and not key.startswith("_")
    }


class ContextFilter(logging.Filter):
    """Copies the :func:`log_context` fields onto each record (``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def _iso(created: float) -> str:
    stamp = dt.datetime.fromtimestamp(created, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _one_line_exc(record: logging.LogRecord) -> str | None:
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).strip()
    elif record.exc_text:
        text = record.exc_text
    else:
        return None
    if record.stack_info:
        text += "\n" + record.stack_info
    return text


# syslog priorities for journald's stream parser (SyslogLevelPrefix=yes).
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class TextFormatter(logging.Formatter):
    """``<ts> LEVEL logger [camera=.. recipe=..] message | traceback``."""

    def __init__(self, *, journal: bool = False) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        ctx = " ".join(f"{k}={fields[k]}" for k in CONTEXT_FIELDS if k in fields)
        text = record.getMessage()
        exc = _one_line_exc(record)
        if exc:
            text += " | " + " | ".join(line.strip() for line in exc.splitlines() if line.strip())
        text = " ".join(text.splitlines())  # one event, one line
        head = (
            f"<{_PRIORITY.get(record.levelno, 6)}>{record.name}"
            if self.journal
            else f"{_iso(record.created)} {record.levelname} {record.name}"
        )
        return f"{head} [{ctx}] {text}" if ctx else f"{head} {text}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line (after a ``<N>`` priority that journald strips)."""

    def __init__(self, *, journal: bool = False) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        body.update(_fields(record))
        exc = _one_line_exc(record)
        if exc:
            body["exc"] = exc
        line = json.dumps(body, ensure_ascii=False, default=str)
        return f"<{_PRIORITY.get(record.levelno, 6)}>{line}" if self.journal else line


@dataclass
class _Window:
    first: float
    suppressed: int = 0
    record: logging.LogRecord | None = None


class EdgedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes formatted lines to a stream, holding back repeats (see the module doc)."""

    def __init__(
        self,
        stream: TextIO,
        *,
        repeat_window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(stream)
        self.addFilter(ContextFilter())
        self.repeat_window_s = repeat_window_s
        self._clock = clock
        self._windows: dict[tuple[Any, ...], _Window] = {}
        self.suppressed_total = 0

    def _key(self, record: logging.LogRecord) -> tuple[Any, ...]:
        fields = _fields(record)
        return (
            record.name,
            record.levelno,
            record.getMessage(),
            *(str(fields.get(k, "")) for k in CONTEXT_FIELDS),
        )

    def emit(self, record: logging.LogRecord) -> None:
        now = self._clock()
        self._flush_expired(now)
        if record.levelno <= logging.DEBUG:
            super().emit(record)
            return
        key = self._key(record)
        window = self._windows.get(key)
        if window is not None:
            window.suppressed += 1
            window.record = record
            self.suppressed_total += 1
            return
        if len(self._windows) < _MAX_TRACKED:
            self._windows[key] = _Window(first=now)
        super().emit(record)

    def _flush_expired(self, now: float) -> None:
        expired = [k for k, w in self._windows.items() if now - w.first >= self.repeat_window_s]
        for key in expired:
            window = self._windows.pop(key)
            if window.suppressed and window.record is not None:
                super().emit(self._summary(window))

    def _summary(self, window: _Window) -> logging.LogRecord:
        assert window.record is not None
        src = window.record
        return logging.makeLogRecord(
            {
                **{k: v for k, v in src.__dict__.items() if k not in ("exc_info", "exc_text")},
                "msg": "suppressed %d repeat%s in the last %.0f s of: %s",
                "args": (
                    window.suppressed,
                    "s" if window.suppressed != 1 else "",
                    self.repeat_window_s,
                    src.getMessage(),
                ),
                "exc_info": None,
                "exc_text": None,
                "stack_info": None,
                "created": time.time(),
                "repeats": window.suppressed,
            }
        )

    def flush_suppressed(self, *, force: bool = False) -> None:
        """Write summaries of repeat windows that ended (all of them with ``force``)."""
        self.acquire()
        try:
            self._flush_expired(float("inf") if force else self._clock())
        finally:
            self.release()
        self.flush()


def _journal_stream(stream: TextIO) -> bool:
    """True when ``stream`` is the journald stream systemd connected (``$JOURNAL_STREAM``)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not dev or not ino:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return f"{st.st_dev}:{st.st_ino}" == value


def setup_logging(
    cfg: LoggingConfig,
    *,
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> EdgedHandler:
    """Install (or replace) edged's handler on the root logger; returns it.

    ``cfg.level`` applies to edged's own loggers; other libraries log at WARNING
    and above (their INFO chatter, e.g. access logs, would drown the events).
    """
    out = sys.stderr if stream is None else stream
    root = logging.getLogger()
    old = [h for h in root.handlers if isinstance(h, EdgedHandler)]
    for h in old:
        h.flush_suppressed(force=True)
        root.removeHandler(h)
    handler = EdgedHandler(out, repeat_window_s=cfg.repeat_window_s, clock=clock)
    journal = _journal_stream(out)
    if cfg.format == "json":
        handler.setFormatter(JsonFormatter(journal=journal))
    else:
        handler.setFormatter(TextFormatter(journal=journal))
    root.addHandler(handler)
    level = logging.getLevelNamesMapping()[cfg.level]
    root.setLevel(max(level, logging.WARNING))
    logging.getLogger("edged").setLevel(level)
    logging.captureWarnings(True)
    return handler


def flush_suppressed(*, force: bool = False) -> None:
    """Write pending repeat summaries of the installed handler (see the module doc)."""
    for h in logging.getLogger().handlers:
        if isinstance(h, EdgedHandler):
            h.flush_suppressed(force=force)


async def run_summary_flusher(interval_s: float = 5.0) -> None:
    """A task that writes repeat summaries soon after their window ends."""
    import asyncio

    while True:
        await asyncio.sleep(interval_s)
        flush_suppressed()
