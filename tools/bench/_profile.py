"""Profiling a missed target: pyinstrument over the workload, top entries by own time.

pyinstrument samples the calling thread, so profile the workload called serially
(the same code the worker threads run). When pyinstrument is not installed the
profile says so instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any


def profile_top(fn: Callable[[], object], *, repeat: int, top: int = 12) -> list[str]:
    """Run ``fn`` ``repeat`` times under pyinstrument; the ``top`` functions by self time
    (``self ms/call, share, function (file:line)``), then the heaviest call paths."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return ["pyinstrument is not installed: pip install pyinstrument"]
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(repeat):
        fn()
    profiler.stop()
    session = profiler.last_session
    root = session.root_frame() if session is not None else None
    if root is None:
        return ["(no samples)"]
    own: dict[str, float] = defaultdict(float)
    _collect(root, own)
    total = sum(own.values()) or 1.0
    lines = [f"{'self ms/call':>12}  {'share':>6}  function"]
    for name, secs in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{secs * 1000 / repeat:12.2f}  {secs / total:6.1%}  {name}")
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    tree = [ln for ln in text.splitlines() if ln.strip()][:40]
    return [*lines, "", "call tree (pyinstrument):", *tree]


def _collect(frame: Any, own: dict[str, float]) -> None:
    stack = [frame]
    while stack:
        f = stack.pop()
        if f.self_time > 0 and f.function not in ("[self]", "[await]"):
            own[f"{f.function} ({f.file_path_short}:{f.line_no})"] += f.self_time
        elif f.self_time > 0:
            parent = f.parent
            if parent is not None:
                key = f"{parent.function} ({parent.file_path_short}:{parent.line_no})"
                own[key] += f.self_time
        stack.extend(f.children)
