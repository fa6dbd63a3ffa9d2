"""Profiling a missed target: what the time went to, in the table's JSON and printout.

* :func:`profile_top` — pyinstrument over a workload called serially in this thread
  (the per-frame pipeline: the same code a worker thread runs); top entries by own
  time plus the call tree.
* :class:`Spy` — py-spy sampling every thread of this process while a live run
  goes (event loop, worker pool, publisher): samples by thread, hottest functions,
  and the edged function on each hot stack.

When a profiler is not installed the profile says so instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
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
    """Own time per function: pyinstrument keeps it in synthetic ``[self]`` children,
    summed in ``total_self_time`` of the real frame."""
    stack = [frame]
    while stack:
        f = stack.pop()
        if not f.is_synthetic and f.total_self_time > 0:
            own[f"{f.function} ({f.file_path_short}:{f.line_no})"] += f.total_self_time
        stack.extend(f.children)


class Spy:
    """py-spy sampling a process (this one by default; every thread) while a block runs::

    with Spy(duration_s=10) as spy:
        ...  # the workload
    lines = spy.top()
    """

    def __init__(self, *, duration_s: float, rate_hz: int = 100, pid: int | None = None) -> None:
        self.duration_s = duration_s
        self.pid = os.getpid() if pid is None else pid
        self.rate_hz = rate_hz
        self._out = Path(tempfile.mkdtemp(prefix="edged-bench-spy-")) / "stacks.txt"
        self._proc: subprocess.Popen[bytes] | None = None
        self.problem: str | None = None

    def __enter__(self) -> Spy:
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(exe).is_file():
            self.problem = "py-spy is not installed: pip install py-spy"
            return self
        self._proc = subprocess.Popen(
            [exe, "record", "--pid", str(self.pid), "--duration", f"{self.duration_s:.0f}",
             "--rate", str(self.rate_hz), "--format", "raw", "--threads", "--nonblocking",
             "--output", str(self._out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        try:
            _out, err = self._proc.communicate(timeout=self.duration_s + 30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            _out, err = self._proc.communicate()
        if self._proc.returncode != 0 or not self._out.is_file():
            tail = err.decode(errors="replace").strip().splitlines()[:1]
            self.problem = f"py-spy failed: {tail[0] if tail else self._proc.returncode}"

    def top(self, top: int = 12) -> list[str]:
        """Samples per thread group, then the hottest leaf functions and the edged
        functions that lead to them (the module that owns a fix)."""
        if self.problem is not None:
            return [self.problem]
        threads: dict[str, int] = defaultdict(int)
        leaves: dict[str, int] = defaultdict(int)
        owners: dict[str, int] = defaultdict(int)
        total = 0
        for line in self._out.read_text(errors="replace").splitlines():
            stack, _, count_s = line.rpartition(" ")
            if not stack or not count_s.isdigit():
                continue
            count = int(count_s)
            frames = stack.split(";")
            thread = frames[0].split(": ", 1)[-1].rstrip("0123456789_-")
            total += count
            threads[thread or "?"] += count
            if len(frames) > 1:
                leaves[frames[-1]] += count
            own = next((f for f in reversed(frames[1:]) if "(edged/" in f), None)
            if own is not None:
                owners[own] += count
        if total == 0:
            return ["(no samples)"]
        out = [f"py-spy: {total} samples at {self.rate_hz} Hz over {self.duration_s:.0f} s"]
        out += ["samples by thread:"]
        out += [f"  {n:6d} {n / total:6.1%}  {t}" for t, n in _ranked(threads, top)]
        out += ["hottest functions (leaf frame):"]
        out += [f"  {n:6d} {n / total:6.1%}  {f}" for f, n in _ranked(leaves, top)]
        out += ["edged code on those stacks (innermost edged frame):"]
        out += [f"  {n:6d} {n / total:6.1%}  {f}" for f, n in _ranked(owners, top)]
        return out


def _ranked(counts: dict[str, int], top: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: -kv[1])[:top]
