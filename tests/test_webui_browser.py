"""The operator web page in a real browser against a real daemon on a synthetic line.

Headless Chromium from Debian's ``chromium`` package, driven by Playwright (pointed
at that executable; no browser is downloaded). The daemon runs as ``edged run`` in a
child process on a small, fast synthetic label line with an API key. The tests see a
camera tile update, open a failed part and find its boxes, teach and roll back a
reference with the key, and see the page refused without it. The tests take
screenshots of the overview and of a failed part; with ``EDGED_SCREENSHOTS_DIR=docs/img``
they replace the ones the README and docs/ show (otherwise they go to a temporary directory).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[1]
KEY = "operator-key-1"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium package"),
]


def _config(tmp: Path) -> dict[str, Any]:
    return {
        "node_id": "demo",
        "state_dir": str(tmp / "state"),
        "references_dir": str(tmp / "references"),
        "cameras": {
            "line1": {
                "source": "synthetic",
                "recipe": "label",
                "fps": 8,
                "synthetic": {
                    "scene": "label",
                    "width": 640,
                    "height": 512,
                    "pixel_format": "BayerRG8",
                    "defect_rate": 0.4,
                    "seed": 7,
                    "auto_teach": 3,
                },
            }
        },
        "recipes": {
            "label": {
                "description": "printed label, compared against taught good labels",
                "checks": {"quality": {}, "difference": {}},
                "limits": [
                    'quality.encoding == "OK"',
                    "quality.brightness.over_per <= 5",
                    "difference.count == 0",
                ],
            },
            "plain": {
                "description": "image quality only",
                "checks": {"quality": {}},
                "limits": ["quality.brightness.over_per <= 100"],
            },
        },
        "mqtt": {"enabled": False},
        "http": {"host": "127.0.0.1", "port": 0, "api_key": KEY},
        "logging": {"summary_interval_s": 0},
    }


class Station:
    """``edged run`` in a child process; ``url`` once it listens."""

    def __init__(self, tmp: Path) -> None:
        path = tmp / "edged.yaml"
        path.write_text(yaml.safe_dump(_config(tmp)))
        self.log = tmp / "edged.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for var in ("NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC"):
            env.pop(var, None)
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edged", "run", "--config", str(path)],
                cwd=tmp,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.url = self._wait_listening()

    def _wait_listening(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r"edged started: .* http (127\.0\.0\.1:\d+)", self.log.read_text())
            if found:
                return f"http://{found.group(1)}"
            if self.proc.poll() is not None:
                pytest.fail(f"edged exited with {self.proc.returncode}: {self.log.read_text()}")
            time.sleep(0.1)
        pytest.fail(f"edged did not start: {self.log.read_text()}")

    def api(self, path: str, *, method: str = "GET", body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"X-API-Key": KEY, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=20) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    st = Station(tmp_path_factory.mktemp("station"))
    try:
        yield st
    finally:
        st.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``$EDGED_SCREENSHOTS_DIR`` or a temporary directory."""
    wanted = os.environ.get("EDGED_SCREENSHOTS_DIR")
    path = Path(wanted) if wanted else tmp_path_factory.mktemp("shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def urls() -> list[str]:
    """Every URL the page's tab requested."""
    return []


@pytest.fixture
def page(browser: Any, station: Station, urls: list[str]) -> Iterator[Any]:
    """A fresh tab (its own sessionStorage) at 1280x800, recording every request URL."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.on("request", lambda req: urls.append(req.url))
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert errors == []  # no script error on the page
    assert urls  # the page was used
    assert not any(KEY in url for url in urls)  # the key never travels in a URL


def _enter_key(page: Any, station: Station, key: str = KEY) -> None:
    page.goto(station.url + "/")
    page.wait_for_selector("#key-dialog[open]")  # the station wants its key: the page asks
    page.fill("#key-input", key)
    page.click("#key-ok")
    page.wait_for_selector("#key-button.set")


def _seq(text: str) -> int:
    found = re.search(r"#(\d+)", text)
    assert found, text
    return int(found.group(1))


def test_overview_tile_updates(page: Any, station: Station, shots: Path) -> None:
    _enter_key(page, station)
    tile = page.locator('.tile[data-camera="line1"]')
    tile.locator(".verdict").wait_for()
    first_seq = _seq(tile.locator(".verdict").inner_text())
    page.wait_for_function("document.querySelector('.tile img.frame').naturalWidth === 640")
    first_src = tile.locator("img.frame").get_attribute("src")
    page.wait_for_function(
        "(seq) => Number((document.querySelector('.tile .verdict').textContent.match(/#(\\d+)/)"
        " || [0, 0])[1]) > seq + 3",
        arg=first_seq,
    )
    page.wait_for_function(
        "(src) => document.querySelector('.tile img.frame').src !== src", arg=first_src
    )
    assert tile.locator(".state").inner_text() == "running"
    assert tile.locator(".recipe").inner_text() == "recipe label"
    minute = tile.locator('tr[data-window="last_minute"] td')
    counts = [minute.nth(i).inner_text() for i in range(1, 4)]
    assert sum(int(c) for c in counts) >= first_seq + 3  # pass + fail + error
    assert int(counts[1]) > 0  # 40 % of the parts have a defect
    # Beside the live image: the last failed part, boxed, a click away from its details.
    page.wait_for_function("document.querySelector('.tile img.last-fail').naturalWidth === 640")
    assert tile.locator(".fail-caption").inner_text().startswith("last failure #")
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "overview.png"))
    assert (shots / "overview.png").stat().st_size > 10_000
    tile.locator(".fail-pane").click()
    page.wait_for_selector("#part-dialog[open]")
    assert page.locator("#part-reasons li").count() >= 1


def _red_share_on_box(page: Any) -> float:
    """Share of the first region's top-edge pixels (in the shown JPEG) that are red."""
    return float(
        page.evaluate(
            """() => {
            const img = document.querySelector('#part-image');
            const cells = [...document.querySelectorAll('#part-regions tbody tr:first-child td')];
            const [x, y, w] = cells.slice(2, 5).map((c) => Number(c.textContent));
            const canvas = document.createElement('canvas');
            canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
            const ctx = canvas.getContext('2d');
            ctx.drawImage(img, 0, 0);
            const px = ctx.getImageData(x, y, w, 1).data;
            let red = 0;
            for (let i = 0; i < px.length; i += 4) {
                if (px[i] > px[i + 1] + 60 && px[i] > px[i + 2] + 60) red += 1;
            }
            return red / w;
        }"""
        )
    )


def test_a_failed_part_shows_its_boxes(page: Any, station: Station, shots: Path) -> None:
    _enter_key(page, station)
    page.click('#tabs button[data-view="failures"]')
    card = page.locator(".part-card").first
    card.wait_for()
    page.wait_for_function("document.querySelector('.part-card img').naturalWidth > 0")
    part_id = card.get_attribute("data-id")
    card.click()
    page.wait_for_selector("#part-dialog[open]")
    page.wait_for_function("document.querySelector('#part-image').naturalWidth === 640")
    result = station.api(f"/api/v1/failures/line1/{part_id}")
    assert result["verdict"] == "fail"
    rows = page.locator("#part-regions tbody tr")
    assert rows.count() == len(result["regions"]) >= 1
    first = [rows.first.locator("td").nth(i).inner_text() for i in range(6)]
    r0 = result["regions"][0]
    assert first == [r0["label"], r0["check"], *(str(r0[k]) for k in ("x", "y", "width", "height"))]
    reasons = page.locator("#part-reasons li").all_inner_texts()
    assert reasons == result["reasons"]
    assert any("difference.count" in r for r in reasons)
    assert json.loads(page.locator("#part-json").inner_text()) == result
    assert _red_share_on_box(page) > 0.6  # the box is drawn where the region is
    page.wait_for_timeout(200)
    page.screenshot(path=str(shots / "failure.png"))


def _ref_card(page: Any) -> Any:
    return page.locator('.ref-card[data-recipe="label"][data-camera="line1"]')


def _confirm(page: Any) -> None:
    page.wait_for_selector("#confirm-dialog[open]")
    page.click("#confirm-ok")


def test_teach_and_roll_back_with_the_key_and_not_without(page: Any, station: Station) -> None:
    before = station.api("/api/v1/references/label/line1")
    assert before["active"] == "v1"  # auto-taught at start
    _enter_key(page, station)
    page.click('#tabs button[data-view="references"]')
    card = _ref_card(page)
    card.wait_for()
    assert "active v1" in card.locator(".card-head").inner_text()
    page.wait_for_function(
        "document.querySelector('.ref-card[data-camera=\"line1\"] .version img').naturalWidth > 0"
    )

    # Teach from the next 2 frames: confirmed, then done; the new version is active.
    card.locator(".teach-frames").fill("2")
    card.locator("button.teach").click()
    _confirm(page)
    page.wait_for_selector("#notice.ok")
    assert page.locator("#notice").inner_text() == "teach: done"
    card.locator('.version.active[data-version="v2"]').wait_for()
    after = station.api("/api/v1/references/label/line1")
    assert after["active"] == "v2"
    assert [v["version"] for v in after["versions"]] == ["v1", "v2"]
    assert after["versions"][1]["images"] == 2

    # Cancelled: nothing happens.
    card.locator("button.rollback").click()
    page.wait_for_selector("#confirm-dialog[open]")
    page.click("#confirm-cancel")
    assert station.api("/api/v1/references/label/line1")["active"] == "v2"

    # Without the key (forgotten in this tab) the station refuses, and the page says so.
    page.click("#key-button")
    page.click("#key-clear")
    page.wait_for_selector("#key-button:not(.set)")
    card.locator("button.rollback").click()
    _confirm(page)
    page.wait_for_selector("#key-dialog[open]")  # asks for the key again
    notice = page.locator("#notice").inner_text()
    assert notice.startswith("roll back: refused — this needs the API key")
    page.click("#key-cancel")
    assert station.api("/api/v1/references/label/line1")["active"] == "v2"

    # A wrong key is refused the same way.
    page.click("#key-button")
    page.fill("#key-input", "not-the-key")
    page.click("#key-ok")
    page.wait_for_selector("#key-dialog[open]")  # the view's reload is refused first
    page.click("#key-cancel")
    assert page.locator("#references .ref-card").count() == 0  # nothing shown without it

    # With the key again: roll back to v1.
    page.click("#key-button")
    page.fill("#key-input", KEY)
    page.click("#key-ok")
    card = _ref_card(page)
    card.wait_for()
    card.locator("button.rollback").click()
    _confirm(page)
    page.wait_for_selector("#notice.ok")
    card = _ref_card(page)
    card.locator('.version.active[data-version="v1"]').wait_for()
    assert station.api("/api/v1/references/label/line1")["active"] == "v1"


def test_upload_and_delete_a_reference(page: Any, station: Station, tmp_path: Path) -> None:
    frame = tmp_path / "good.jpg"
    req = urllib.request.Request(
        station.url + "/api/v1/cameras/line1/frame.jpg", headers={"X-API-Key": KEY}
    )
    with urllib.request.urlopen(req, timeout=20) as resp:
        frame.write_bytes(resp.read())
    before = station.api("/api/v1/references/label/line1")["versions"]
    _enter_key(page, station)
    page.click('#tabs button[data-view="references"]')
    card = _ref_card(page)
    card.wait_for()
    card.locator("input.upload-files").set_input_files(str(frame))
    _confirm(page)
    page.wait_for_selector("#notice.ok")
    after = station.api("/api/v1/references/label/line1")
    new = after["active"]
    assert len(after["versions"]) == len(before) + 1
    assert after["versions"][-1] == {**after["versions"][-1], "version": new, "images": 1}
    card = _ref_card(page)
    card.locator(f'.version.active[data-version="{new}"]').wait_for()
    # Activate the previous version, then delete the uploaded one.
    previous = before[-1]["version"]
    card.locator(f'.version[data-version="{previous}"] button.activate').click()
    _confirm(page)
    card = _ref_card(page)
    card.locator(f'.version.active[data-version="{previous}"]').wait_for()
    card.locator(f'.version[data-version="{new}"] button.delete').click()
    _confirm(page)
    _ref_card(page).locator(f'.version[data-version="{new}"]').wait_for(state="detached")
    final = station.api("/api/v1/references/label/line1")
    assert [v["version"] for v in final["versions"]] == [v["version"] for v in before]
    assert final["active"] == previous


def test_switch_the_recipe(page: Any, station: Station) -> None:
    _enter_key(page, station)
    page.click('#tabs button[data-view="recipes"]')
    switch = page.locator('.switch[data-camera="line1"]')
    switch.wait_for()
    card = page.locator('.recipe-card[data-recipe="plain"]')
    assert "quality.brightness.over_per <= 100" in card.inner_text()  # limits shown
    switch.locator("select").select_option("plain")
    switch.locator("button.switch-recipe").click()
    _confirm(page)
    page.wait_for_selector("#notice.ok")
    assert station.api("/api/v1/cameras/line1/recipe")["recipe"] == "plain"
    switch = page.locator('.switch[data-camera="line1"]')
    switch.locator("select").select_option("label")
    switch.locator("button.switch-recipe").click()
    _confirm(page)
    deadline = time.monotonic() + 10  # (the notice from the first switch still shows)
    while station.api("/api/v1/cameras/line1/recipe")["recipe"] != "label":
        assert time.monotonic() < deadline, "the page did not switch back"
        time.sleep(0.1)


def test_without_the_key_the_page_shows_no_data(page: Any, station: Station) -> None:
    page.goto(station.url + "/")
    page.wait_for_selector("#key-dialog[open]")
    page.click("#key-cancel")
    page.wait_for_timeout(1500)
    assert page.locator(".tile").count() == 0
    assert page.locator("#key-button").inner_text() == "API key: none"


def test_the_api_view_renders_the_openapi_document(
    page: Any, station: Station, urls: list[str]
) -> None:
    _enter_key(page, station)
    page.click('#tabs button[data-view="api"]')
    frame = page.frame_locator("#api-frame")
    frame.locator(".swagger-ui .info .title").wait_for()
    assert frame.locator(".swagger-ui .info .title").inner_text().startswith("edged")
    assert frame.locator(".opblock-tag", has_text="Admin").count() == 1
    assert all(url.startswith((station.url, "blob:")) for url in urls)  # nothing from elsewhere
