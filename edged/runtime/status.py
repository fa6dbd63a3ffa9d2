"""The one-line status summary systemd shows (``STATUS=``, ``systemctl status edged``).

Example: ``2/2 cameras up (line1 5.0 fps, line2 4.9 fps); 1234 results, 17 fail,
0 error; mqtt connected, outbox 0``. Bounded length; read from the Runtime and its
metrics only (no I/O).
"""

from __future__ import annotations

from edged.runtime.shared import Runtime


def _results_by_verdict(runtime: Runtime) -> dict[str, int]:
    totals = {"pass": 0, "fail": 0, "error": 0}
    for family in runtime.metrics.results.collect():
        for s in family.samples:
            if s.name.endswith("_total"):
                verdict = s.labels.get("verdict", "")
                totals[verdict] = totals.get(verdict, 0) + int(s.value)
    return totals


def summary(runtime: Runtime) -> str:
    """One line: cameras up with their fps, results by verdict, MQTT and outbox."""
    parts = []
    states = runtime.camera_states()
    if states:
        up = sum(1 for st in states.values() if st.connected)
        cams = ", ".join(
            f"{cid} {st.fps:.1f} fps" if st.connected else f"{cid} DOWN"
            for cid, st in sorted(states.items())
        )
        parts.append(f"{up}/{len(states)} cameras up ({cams})")
    else:
        parts.append("no cameras")
    totals = _results_by_verdict(runtime)
    parts.append(f"{sum(totals.values())} results, {totals['fail']} fail, {totals['error']} error")
    if runtime.settings.mqtt.enabled and runtime.publisher is not None:
        stats = runtime.publisher.stats()
        state = "connected" if stats.connected else "DISCONNECTED"
        parts.append(f"mqtt {state}, outbox {stats.outbox_depth}")
    elif not runtime.settings.mqtt.enabled:
        parts.append("mqtt off")
    return "; ".join(parts)
