"""The PixLab imgdiff document (../shared/api-docs/pixlab-imgdiff.txt) as a contract.

The document's Python example is replayed as printed (``requests.get`` with
``src``, ``target`` and ``key``; the vendor's URLs served by a local file server),
then its last line — ``"..." + reply['link']`` — is followed: the link serves the
reconstructed difference image.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pytest
import requests
from _apidoc_helpers import TOKEN, FileServer, edged_server, encode
from _http_helpers import ServerThread


def _jdr() -> tuple[np.ndarray, np.ndarray]:
    face = np.full((60, 80, 3), 120, np.uint8)
    cv2.circle(face, (40, 30), 20, (40, 90, 200), -1)
    drawn = face.copy()
    drawn[10:20, 10:30] = (255, 255, 255)  # the meme drawn on top
    return face, drawn


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    return _jdr()


@pytest.fixture(scope="module")
def files(images: tuple[np.ndarray, np.ndarray]) -> Iterator[FileServer]:
    src, target = images
    content = {"jdr.png": encode(src, ".png"), "jdr_draw.png": encode(target, ".png")}
    content["small.png"] = encode(src[:30], ".png")
    with FileServer(content) as server:
        yield server


@pytest.fixture(scope="module")
def edged() -> Iterator[ServerThread]:
    with edged_server() as server:
        yield server


def _expected_mse(src: np.ndarray, target: np.ndarray) -> float:
    d = src.astype(np.float64) - target.astype(np.float64)
    return float(np.mean(d * d))


def test_the_documented_python_example(
    edged: ServerThread, files: FileServer, images: tuple[np.ndarray, np.ndarray]
) -> None:
    req = requests.get(
        edged.url + "/imgdiff",
        params={"src": files.url("jdr.png"), "target": files.url("jdr_draw.png"), "key": TOKEN},
        timeout=30,
    )
    reply = req.json()
    assert reply["status"] == 200, reply
    assert isinstance(reply["diff"], float)
    assert reply["diff"] == pytest.approx(_expected_mse(*images))
    assert isinstance(reply["id"], str)
    assert reply["id"]
    text = "Reconstructed image link: " + reply["link"]
    assert text.startswith("Reconstructed image link: http://127.0.0.1:")
    # the link serves the reconstructed (difference) image, without the key
    image = requests.get(reply["link"], timeout=30)
    assert image.status_code == 200
    assert image.headers["Content-Type"] == "image/png"
    diff = cv2.imdecode(np.frombuffer(image.content, np.uint8), cv2.IMREAD_UNCHANGED)
    src, target = images
    assert np.array_equal(diff, cv2.absdiff(src, target))
    assert reply["id"] in reply["link"]


def test_key_in_the_www_authenticate_header(edged: ServerThread, files: FileServer) -> None:
    params = {"src": files.url("jdr.png"), "target": files.url("jdr_draw.png")}
    resp = requests.get(
        edged.url + "/imgdiff", params=params, headers={"WWW-Authenticate": TOKEN}, timeout=30
    )
    assert resp.json()["status"] == 200


def test_blob_returns_the_reconstructed_image(
    edged: ServerThread, files: FileServer, images: tuple[np.ndarray, np.ndarray]
) -> None:
    params = {
        "src": files.url("jdr.png"),
        "target": files.url("jdr_draw.png"),
        "key": TOKEN,
        "blob": "true",
    }
    resp = requests.get(edged.url + "/imgdiff", params=params, timeout=30)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "image/png"
    diff = cv2.imdecode(np.frombuffer(resp.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(diff, cv2.absdiff(*images))


def test_failures_have_status_and_error(edged: ServerThread, files: FileServer) -> None:
    base = {"src": files.url("jdr.png"), "target": files.url("jdr_draw.png")}
    cases = [
        (base, 401),  # no key
        ({**base, "key": "wrong"}, 401),
        ({**base, "target": files.url("small.png"), "key": TOKEN}, 400),  # sizes differ
        ({"src": files.url("jdr.png"), "key": TOKEN}, 400),  # no target
        ({**base, "target": "http://169.254.169.254/latest/meta-data", "key": TOKEN}, 400),
    ]
    for params, status in cases:
        reply = requests.get(edged.url + "/imgdiff", params=params, timeout=30).json()
        assert reply["status"] == status, (params, reply)
        assert isinstance(reply["error"], str)
        assert reply["error"]
    gone = requests.get(edged.url + "/imgdiff/results/" + "0" * 32 + ".png", timeout=30)
    assert gone.status_code == 404


def test_result_images_are_bounded_in_age_count_and_bytes() -> None:
    from edged.http.pixlab import ResultImages

    store = ResultImages(ttl_s=10.0, max_items=3, max_bytes=100)
    a = store.put(b"a" * 10, now=0.0)
    assert store.get(a, now=10.0) == b"a" * 10
    assert store.get(a, now=10.5) is None  # older than ttl_s
    keys = [store.put(bytes([i]) * 10, now=20.0 + i) for i in range(4)]
    assert len(store) == 3  # the oldest of four went
    assert store.get(keys[0], now=24.0) is None
    assert store.get(keys[3], now=24.0) == b"\x03" * 10
    big = store.put(b"b" * 90, now=25.0)  # 30 + 90 > 100 bytes: the oldest go
    assert store.get(big, now=25.0) == b"b" * 90
    assert store.get(keys[1], now=25.0) is None
    assert store.get(keys[3], now=25.0) == b"\x03" * 10
