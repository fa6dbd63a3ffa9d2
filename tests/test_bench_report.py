"""The benchmark's arithmetic and table, on hand-made numbers."""

from __future__ import annotations

import pytest

from tools.bench._measure import Samples, interleaved, percentile
from tools.bench._report import SectionReport, fmt_spread, fmt_value, judge, markdown_table


def test_percentile_interpolates_between_order_statistics() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 99) == pytest.approx(4.96)
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_samples_median_and_tail() -> None:
    s = Samples((3.0, 1.0, 2.0, 100.0))
    assert s.n == 4
    assert s.median_ms == 2.5
    assert s.min_ms == 1.0
    assert s.p99_ms == pytest.approx(97.09)


def test_interleaved_calls_each_item_once_per_round() -> None:
    calls: list[str] = []
    names = "abcde"
    items = {n: (lambda n=n: calls.append(n)) for n in names}
    out = interleaved(items, rounds=4, warmup=1)
    rounds = [calls[i : i + 5] for i in range(0, len(calls), 5)]
    assert len(rounds) == 5  # one warm-up round, then four timed rounds
    assert rounds[0] == rounds[1] == list(names)  # warm-up and first round: as given
    for r in rounds[2:]:
        assert sorted(r) == list(names)  # every item once per round ...
    assert any(r != list(names) for r in rounds[2:])  # ... in shuffled orders
    assert all(out[n].n == 4 for n in names)


def test_judge_passes_misses_and_cannot_tell() -> None:
    kw = {"metric": "m", "size": "2448x2048"}
    assert judge("t", "≤ 60 ms", 59.0, "ms", ok=True, **kw).status == "PASS"
    assert judge("t", "≤ 60 ms", 61.0, "ms", ok=False, **kw).status == "MISS"
    assert judge("t", "≤ 60 ms", None, "ms", ok=True, **kw).status == "n/a"
    assert judge("t", "≤ 60 ms", 59.0, "ms", ok=None, **kw).status == "n/a"


def test_fmt_value_keeps_three_significant_digits() -> None:
    assert fmt_value(0.1234, "ms") == "0.123 ms"
    assert fmt_value(1.234, "ms") == "1.23 ms"
    assert fmt_value(12.34, "ms") == "12.3 ms"
    assert fmt_value(1234.5, "req/s") == "1234 req/s"
    assert fmt_value(12.5, "x") == "12.5×"
    assert fmt_value(0, "MB") == "0 MB"


def test_fmt_spread_shows_the_median_and_its_range() -> None:
    assert fmt_spread(12.34, 11.04, 15.2, "ms") == "12.3 ms [11.0–15.2]"
    assert fmt_spread(2.5, 1.95, 3.01, "x") == "2.50× [1.95–3.01]"


def test_markdown_table_shows_each_sections_load() -> None:
    sec = SectionReport("http", "HTTP", note="recipe: quality")
    sec.loadavg_1m = (15.04, 15.86)
    sec.add("req/s", 9.0, "req/s", "1280x1024")
    assert markdown_table([sec], ["1280x1024"]).splitlines()[2] == (
        "| http | (recipe: quality; load 15.0→15.9) |  |  |"
    )


def test_markdown_table_one_row_per_measurement_and_target() -> None:
    sec = SectionReport("pipeline", "Full pipeline")
    sec.add("per frame p50", 50.0, "ms", "1280x1024", "50.0 ms")
    sec.add("per frame p50", 70.0, "ms", "2448x2048", "70.0 ms")
    sec.targets.append(
        judge("p50", "≤ 60 ms", 70.0, "ms", ok=False, metric="per frame p50", size="2448x2048")
    )
    sec.skip("check edges", "not registered")
    off = SectionReport("http", "HTTP", available=False, note="not available: no module")
    table = markdown_table([sec, off], ["1280x1024", "2448x2048"])
    assert table.splitlines() == [
        "| section | measurement | 1280×1024 | 2448×2048 | target |",
        "|---|---|---|---|---|",
        "| pipeline | per frame p50 | 50.0 ms | 70.0 ms | ≤ 60 ms: **MISS** |",
        "| pipeline | check edges | — | — | skipped: not registered |",
        "| http | not available: no module | — | — |  |",
    ]
    doc = sec.to_dict()
    assert doc["targets"][0]["status"] == "MISS"
    assert doc["metrics"][1] == {
        "name": "per frame p50",
        "size": "2448x2048",
        "value": 70.0,
        "unit": "ms",
        "text": "70.0 ms",
    }
