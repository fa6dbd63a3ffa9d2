"""The prepared-reference cache of LTU ``differences``: same answers, bounds, metrics.

Known answers: the service's result with the cache (first call prepares, second
reuses) and without it equals the one-shot library call ``differences()`` on the
same pixels; the cache's bounds and counters are checked on small values whose
sizes are given.
"""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from _http_helpers import make_runtime
from _refs_helpers import capture, paint_square, world

from edged.checks.align import align
from edged.checks.difference import DifferenceSettings, differences
from edged.checks.distance import distance
from edged.checks.ltu_differences import flat_matrix, ltu_differences
from edged.http import create_app
from edged.http._refcache import PreparedCache, nbytes_of
from edged.http.ltu_reference import REFERENCE_CACHE
from edged.runtime.metrics import Metrics

URL = "/v2/services/image/differences"
SIZE = (320, 240)


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def _form(**parts: Any) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in parts.items():
        if isinstance(value, np.ndarray):
            form.add_field(name, _png(value), filename=f"{name}.png", content_type="image/png")
        else:
            form.add_field(name, str(value))
    return form


@pytest.fixture(scope="module")
def pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed pairs: colour with a shifted, rotated query and a dark square; grey with a
    bright square; a pair with nothing different."""
    cw = world(SIZE, seed=41, colour=True)
    gw = world(SIZE, seed=7)
    return [
        (
            capture(cw, noise=1.0, seed=1),
            paint_square(
                capture(cw, dx=4.0, dy=3.0, angle_deg=-1.0, noise=2.0, seed=2), 210, 150, 12, -80
            ),
        ),
        (
            capture(gw, noise=1.0, seed=3),
            paint_square(capture(gw, dx=-2.5, noise=1.0, seed=4), 60, 40, 10, 90),
        ),
        (capture(gw, noise=1.0, seed=5), capture(gw, dx=1.0, dy=-1.0, noise=1.0, seed=6)),
    ]


ClientFactory = Callable[..., Any]


@pytest.fixture
async def make_client(aiohttp_client: Any) -> AsyncIterator[ClientFactory]:
    runtimes = []

    async def make(**http: Any) -> Any:
        rt = make_runtime(**http)
        runtimes.append(rt)
        return await aiohttp_client(create_app(rt))

    yield make
    for rt in runtimes:
        rt.pool.shutdown()


def _expected(
    image1: np.ndarray, image2: np.ndarray, roi: np.ndarray | None = None
) -> tuple[dict[str, Any], float, int]:
    """The one-shot library answer for the service's defaults (preset 3, 400 px as the
    LTU document says); the score is the distance between the images."""
    settings = DifferenceSettings.preset(3)  # the service default motion model: auto
    res = differences(image1, image2, settings=settings, resolution=400, roi=roi)
    body = ltu_differences(
        res,
        image1_wh=(image1.shape[1], image1.shape[0]),
        image2_wh=(image2.shape[1], image2.shape[0]),
        mask_type="binary",
        mask_thickness=2,
        mask_color=(255, 255, 255),
        vertices=True,
        transform=False,
    )
    correlation = max(0.0, min(1.0, float(res.registration.correlation)))
    return body, round(2.0 * math.sqrt(1.0 - correlation), 6), res.count


async def _post(client: Any, **parts: Any) -> dict[str, Any]:
    resp = await client.post(URL, data=_form(**parts))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_answers_are_the_same_with_and_without_the_cache(
    make_client: ClientFactory, pairs: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    cached = await make_client()
    uncached = await make_client(reference_cache_entries=0)
    counts = []
    for image1, image2 in pairs:
        want_body, want_score, want_count = _expected(image1, image2)
        first = await _post(cached, image1=image1, image2=image2)
        again = await _post(cached, image1=image1, image2=image2)
        plain = await _post(uncached, image1=image1, image2=image2)
        assert first["details"]["info"]["reference"] == "prepared"
        assert again["details"]["info"]["reference"] == "cached"
        assert plain["details"]["info"]["reference"] == "prepared"
        for got in (first, again, plain):
            assert got["result"] == want_body
            assert got["details"]["score"] == want_score
            assert got["details"]["info"]["count"] == want_count
        counts.append(want_count)
    assert counts == [1, 1, 0]  # the pairs say what they should: a defect, a defect, none
    assert len(uncached.app[REFERENCE_CACHE]) == 0


async def test_roi_and_options_are_part_of_the_key(
    make_client: ClientFactory, pairs: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    client = await make_client()
    image1, image2 = pairs[0]
    roi = np.zeros(image1.shape[:2], np.uint8)
    roi[:, : SIZE[0] // 2] = 255  # the defect (x 210..222) is outside: nothing found
    with_roi = await _post(client, image1=image1, image2=image2, image1_roi=roi)
    assert with_roi["details"]["info"]["reference"] == "prepared"
    assert with_roi["result"] == _expected(image1, image2, roi)[0]
    assert with_roi["details"]["info"]["count"] == 0
    plain = await _post(client, image1=image1, image2=image2)
    assert plain["details"]["info"]["reference"] == "prepared"  # same image, no ROI: a miss
    assert plain["details"]["info"]["count"] == 1
    fic = '{"resolution": 200}'
    small = await _post(client, image1=image1, image2=image2, fic_settings=fic)
    assert small["details"]["info"]["reference"] == "prepared"  # another working size
    again = await _post(client, image1=image1, image2=image2, image1_roi=roi)
    assert again["details"]["info"]["reference"] == "cached"
    assert len(client.app[REFERENCE_CACHE]) == 3


async def test_http_bounds_and_metrics(
    make_client: ClientFactory, pairs: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    client = await make_client(reference_cache_entries=2)
    refs = [p[0] for p in pairs]
    for ref in (*refs, refs[2]):  # three references, then the last one again
        await _post(client, image1=ref, image2=ref)
    cache = client.app[REFERENCE_CACHE]
    assert len(cache) == 2
    text = await (await client.get("/metrics")).text()
    assert 'edged_http_reference_cache_requests_total{result="miss"} 3.0' in text
    assert 'edged_http_reference_cache_requests_total{result="hit"} 1.0' in text
    assert "edged_http_reference_cache_evictions_total 1.0" in text
    assert "edged_http_reference_cache_entries 2.0" in text
    (line,) = [x for x in text.splitlines() if x.startswith("edged_http_reference_cache_bytes ")]
    assert float(line.split()[1]) == cache.nbytes
    assert 0 < cache.nbytes <= 128 * 1024**2


async def test_a_bad_reference_is_an_error_and_is_not_kept(
    make_client: ClientFactory, pairs: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    client = await make_client()
    image1, image2 = pairs[0]
    for _ in range(2):
        resp = await client.post(URL, data=_form(image1=_png(image1)[:200].hex(), image2=image2))
        assert resp.status == 400
        assert "image1" in (await resp.json())["details"]["message"]
    assert len(client.app[REFERENCE_CACHE]) == 0


async def test_both_images_bad_names_image1_whichever_decoder_fails_first(
    make_client: ClientFactory, pairs: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    client = await make_client()
    big = np.zeros((600, 800), np.uint8)
    for _ in range(3):  # image1 fails late (a whole PNG decoded), image2 at once
        resp = await client.post(
            URL,
            data=_form(
                image1=base64.b64encode(_png(big)[:-40]).decode(), image2="bm90IGFuIGltYWdl"
            ),
        )
        assert resp.status == 400
        message = (await resp.json())["details"]["message"]
        assert message.startswith("PNG: expected a complete file"), message  # image1's


ALIGN_URL = "/v2/services/image/alignmentMatrix"


async def test_alignment_keeps_image1_prepared_with_the_one_shot_answer(
    make_client: ClientFactory, pairs: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    client = await make_client()
    uncached = await make_client(reference_cache_entries=0)
    image1, image2 = pairs[0]
    want = align(image1, image2, model="auto", resolution=400)  # the service's defaults
    answers = []
    for c, resolution in ((client, 400), (client, 400), (client, 200), (uncached, 400)):
        resp = await c.post(
            ALIGN_URL, data=_form(image1=image1, image2=image2, resolution=resolution)
        )
        assert resp.status == 200, await resp.text()
        answers.append(await resp.json())
    first, again, other, plain = answers
    assert [a["details"]["info"]["reference"] for a in answers] == [
        "prepared",
        "cached",
        "prepared",  # another working size is another entry
        "prepared",
    ]
    assert first["result"]["matrix1"] == flat_matrix(want.matrix1)
    for got in (again, plain):
        assert got["result"] == first["result"]
        assert got["details"]["info"]["registration"] == first["details"]["info"]["registration"]
    assert other["result"]["matrix1"] != first["result"]["matrix1"]  # worked at 200 px
    assert len(client.app[REFERENCE_CACHE]) == 2
    # differences of the same image1 is another entry of the same cache
    await _post(client, image1=image1, image2=image2)
    assert len(client.app[REFERENCE_CACHE]) == 3


async def test_alignment_with_a_bad_image1_is_400_and_nothing_is_kept(
    make_client: ClientFactory, pairs: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    client = await make_client()
    image1, image2 = pairs[0]
    tiny = np.zeros((4, 40), np.uint8)
    for bad, words in ((_png(image1)[:200].hex(), "image1"), (tiny, "image1: expected at least")):
        for _ in range(2):
            resp = await client.post(ALIGN_URL, data=_form(image1=bad, image2=image2))
            assert resp.status == 400
            assert words in (await resp.json())["details"]["message"]
    assert len(client.app[REFERENCE_CACHE]) == 0


DISTANCE_URL = "/v2/services/image/distance"


async def test_distance_keeps_the_reference_prepared_with_the_one_shot_answer(
    make_client: ClientFactory, pairs: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    client = await make_client()
    image1, image2 = pairs[0]
    want = distance(image1, image2)
    forms = [
        _form(refImage=image1, queryImage=image2),
        _form(refImage=image1, queryImage=image2),
        _form(image1=image1, image2=image2),  # the same bytes under the other names
    ]
    two_parts = aiohttp.FormData()  # the document's cUrl: two parts named image
    for img in (image1, image2):
        two_parts.add_field("image", _png(img), filename="i.png", content_type="image/png")
    answers = []
    for data in (*forms, two_parts):
        resp = await client.post(DISTANCE_URL, data=data)
        assert resp.status == 200, await resp.text()
        answers.append(await resp.json())
    assert [a["details"]["info"]["reference"] for a in answers] == [
        "prepared",
        "cached",
        "cached",
        "cached",
    ]
    for got in answers:
        assert got["result"]["distance"] == round(want.distance, 6)
        assert got["result"] == answers[0]["result"]
    assert len(client.app[REFERENCE_CACHE]) == 1


async def test_distance_with_a_bad_reference_is_400_naming_it_and_nothing_is_kept(
    make_client: ClientFactory, pairs: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    client = await make_client()
    image1, image2 = pairs[0]
    for _ in range(2):
        data = _form(refImage=_png(image1)[:200].hex(), queryImage=image2)
        resp = await client.post(DISTANCE_URL, data=data)
        assert resp.status == 400
        assert (await resp.json())["details"]["message"].startswith("refImage")
    resp = await client.post(DISTANCE_URL, data=_form(queryImage=image2))
    assert resp.status == 400
    assert (await resp.json())["details"]["message"].startswith("refImage: missing")
    assert len(client.app[REFERENCE_CACHE]) == 0


# --------------------------------------------------------------------------- the cache itself


class Box:
    """A cached value of a stated size."""

    def __init__(self, name: str, nbytes: int) -> None:
        self.name = name
        self.nbytes = nbytes


def _cache(entries: int, max_bytes: int, metrics: Metrics | None = None) -> PreparedCache[Box]:
    return PreparedCache(
        max_entries=entries, max_bytes=max_bytes, metrics=metrics, size_of=lambda b: b.nbytes
    )


def _maker(name: str, nbytes: int, calls: list[str]) -> Callable[[], Any]:
    async def make() -> Box:
        calls.append(name)
        return Box(name, nbytes)

    return make


async def test_entries_bound_evicts_the_least_recently_used() -> None:
    metrics = Metrics()
    cache = _cache(2, 10**6, metrics)
    calls: list[str] = []
    await cache.get("a", _maker("a", 10, calls))
    await cache.get("b", _maker("b", 10, calls))
    _, hit = await cache.get("a", _maker("a", 10, calls))  # a is now the most recent
    assert hit
    await cache.get("c", _maker("c", 10, calls))  # evicts b
    assert ("a" in cache, "b" in cache, "c" in cache) == (True, False, True)
    assert (cache.hits, cache.misses, cache.evictions) == (1, 3, 1)
    assert calls == ["a", "b", "c"]
    text = metrics.render().decode()
    assert "edged_http_reference_cache_evictions_total 1.0" in text
    assert "edged_http_reference_cache_bytes 20.0" in text


async def test_bytes_bound_holds_and_an_oversized_value_is_used_but_not_kept() -> None:
    cache = _cache(100, 25)
    calls: list[str] = []
    for name in "abc":
        await cache.get(name, _maker(name, 10, calls))
    assert cache.nbytes == 20  # a went when c came (30 > 25)
    assert ("a" in cache, "b" in cache, "c" in cache) == (False, True, True)
    big, hit = await cache.get("big", _maker("big", 26, calls))
    assert (big.name, hit) == ("big", False)
    assert "big" not in cache
    assert cache.nbytes == 20


async def test_concurrent_requests_for_one_key_share_one_preparation() -> None:
    cache = _cache(4, 10**6)
    release = asyncio.Event()
    calls: list[str] = []

    async def slow() -> Box:
        calls.append("x")
        await release.wait()
        return Box("x", 1)

    waiting = [asyncio.ensure_future(cache.get("x", slow)) for _ in range(3)]
    for _ in range(20):
        await asyncio.sleep(0)
    release.set()
    got = await asyncio.gather(*waiting)
    assert calls == ["x"]
    assert [hit for _, hit in got] == [False, True, True]
    assert len({id(box) for box, _ in got}) == 1


async def test_a_failed_preparation_is_not_kept() -> None:
    cache = _cache(4, 10**6)

    async def fail() -> Box:
        raise ValueError("bad reference")

    with pytest.raises(ValueError, match="bad reference"):
        await cache.get("x", fail)
    calls: list[str] = []
    box, hit = await cache.get("x", _maker("x", 1, calls))
    assert (box.name, hit, calls) == ("x", False, ["x"])


async def test_a_cancelled_caller_does_not_cancel_the_preparation() -> None:
    cache = _cache(4, 10**6)
    release = asyncio.Event()

    async def slow() -> Box:
        await release.wait()
        return Box("x", 1)

    first = asyncio.ensure_future(cache.get("x", slow))
    await asyncio.sleep(0)
    first.cancel()  # the client went away
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    for _ in range(20):
        await asyncio.sleep(0)
    assert "x" in cache


def test_nbytes_of_counts_each_array_once() -> None:
    a = np.zeros((10, 10), np.float32)
    assert nbytes_of({"a": a, "again": a, "t": (np.zeros(3, np.uint8), [a])}) == 403


async def test_lookup_counts_a_hit_only_when_the_value_is_kept() -> None:
    cache = _cache(4, 10**6)
    assert cache.lookup("x") is None
    assert (cache.hits, cache.misses) == (0, 0)  # the get() that follows counts the miss
    await cache.get("x", _maker("x", 1, []))
    box = cache.lookup("x")
    assert box is not None
    assert box.name == "x"
    assert (cache.hits, cache.misses) == (1, 1)
