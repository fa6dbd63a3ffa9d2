"""Malformed and hostile requests to the analyze endpoints: each a 4xx with a JSON reason."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from multiprocessing import shared_memory
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from _http_helpers import ServerThread, jpeg_bytes, make_runtime, part_image, png_bytes

from edged.http._decode import SHM_DIR
from edged.http.pekat import PEKAT_STATE, is_loopback

RAW = "/analyze_raw_image"
ENC = "/analyze_image"
SHM = "/analyze_image_shared_memory"


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with ServerThread(make_runtime(max_pixels=1_000_000, max_body_bytes=4 * 1024 * 1024)) as s:
        yield s


def post(srv: ServerThread, path: str, body: bytes = b"", **params: str) -> requests.Response:
    return requests.post(srv.url + path, params=params, data=body, timeout=10)


def assert_error(resp: requests.Response, status: int, *words: str) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    doc = resp.json()
    assert doc["status"] == status
    for word in words:
        assert word in doc["error"], doc["error"]
    return str(doc["error"])


def png_claiming(width: int, height: int) -> bytes:
    """A valid little PNG stream whose IHDR claims ``width × height`` (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# ------------------------------------------------------------------ raw sizes


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"height": "48"}, ("width", "got none")),
        ({"width": "64"}, ("height", "got none")),
        ({"width": "abc", "height": "48"}, ("width", "'abc'")),
        ({"width": "-64", "height": "48"}, ("width", "'-64'")),
        ({"width": "0", "height": "48"}, ("width", "'0'")),
        ({"width": "64", "height": "4.8"}, ("height", "'4.8'")),
        ({"width": "1e3", "height": "48"}, ("width", "'1e3'")),
        ({"width": " 64", "height": "48"}, ("width",)),
        ({"width": "64", "height": "48", "response_type": "thumbnail"}, ("response_type",)),
        ({"width": "64", "height": "48", "context_in_body": "maybe"}, ("context_in_body",)),
        ({"width": "64", "height": "48", "bayer": "XY"}, ("bayer", "'XY'")),
        ({"width": "64", "height": "48", "recipe": "../etc"}, ("recipe",)),
    ],
)
def test_raw_bad_query_is_400(srv: ServerThread, params: dict[str, str], words: tuple[str]) -> None:
    body = part_image(defect=False).tobytes()
    assert_error(post(srv, RAW, body, **params), 400, *words)


def test_raw_duplicate_parameter_is_400(srv: ServerThread) -> None:
    url = f"{srv.url}{RAW}?width=64&width=32&height=48"
    resp = requests.post(url, data=b"\x00" * (64 * 48), timeout=10)
    assert_error(resp, 400, "width", "at most one")


def test_raw_length_mismatch_says_expected_and_received(srv: ServerThread) -> None:
    body = part_image(defect=False).tobytes()[:-7]
    err = assert_error(post(srv, RAW, body, width="64", height="48"), 400)
    assert "9216" in err
    assert "3072" in err
    assert str(64 * 48 * 3 - 7) in err


def test_raw_over_pixel_limit_is_413(srv: ServerThread) -> None:
    assert_error(post(srv, RAW, b"x", width="2000", height="2000"), 413, "max_pixels", "4000000")


def test_raw_grey_and_bayer(srv: ServerThread) -> None:
    grey = part_image(defect=True, grey=True)
    ctx = post(srv, RAW, grey.tobytes(), width="64", height="48").json()
    assert ctx["frame"]["pixel_format"] == "Mono8"
    assert ctx["result"] is False
    # a flat colour (B, G, R) = (30, 120, 220) as an RGGB mosaic debayers back to that colour
    mosaic = np.empty((16, 16), np.uint8)
    mosaic[0::2, 0::2], mosaic[0::2, 1::2] = 220, 120  # R G
    mosaic[1::2, 0::2], mosaic[1::2, 1::2] = 120, 30  # G B
    resp = post(
        srv, RAW, mosaic.tobytes(), width="16", height="16", bayer="", response_type="image"
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "image/png"
    out = cv2.imdecode(np.frombuffer(resp.content, np.uint8), cv2.IMREAD_COLOR)
    assert tuple(out[8, 8]) == (30, 120, 220)
    assert_error(
        post(srv, RAW, mosaic.tobytes()[:-1], width="16", height="16", bayer=""),
        400,
        "Bayer",
        "256",
        "255",
    )


# ------------------------------------------------------------------ encoded bodies


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, ("empty body",)),
        (b"GIF89a" + b"\x00" * 40, 415, ("JPEG", "PNG", "47 49 46")),
        (b"\x89PNG\r\n\x1a\n", 400, ("IHDR",)),
        (b"\xff\xd8\xff\xd9", 400, ("frame header",)),
        (b"\xff\xd8\x00\x00\x00", 400, ("marker",)),
    ],
)
def test_encoded_garbage(srv: ServerThread, body: bytes, status: int, words: tuple[str]) -> None:
    assert_error(post(srv, ENC, body), status, *words)


def test_truncated_files_are_400(srv: ServerThread) -> None:
    image = part_image(defect=True)
    png, jpg = png_bytes(image), jpeg_bytes(image)
    assert_error(post(srv, ENC, png[: len(png) // 2]), 400, "PNG", "truncated")
    assert_error(post(srv, ENC, jpg[: len(jpg) // 2]), 400, "JPEG", "truncated")
    # complete-looking ends but corrupt inside: OpenCV refuses, still a 400
    corrupt = png[:40] + b"\x00" * (len(png) - 52) + png[-12:]
    assert_error(post(srv, ENC, corrupt), 400, "PNG")


def test_decompression_bomb_is_413_before_decoding(srv: ServerThread) -> None:
    bomb = png_claiming(100_000, 100_000)
    assert len(bomb) < 200
    assert_error(post(srv, ENC, bomb), 413, "100000×100000", "max_pixels")


def test_multipart_upload_gets_a_hint(srv: ServerThread) -> None:
    files = {"image": ("part.png", png_bytes(part_image(defect=False)), "image/png")}
    resp = requests.post(srv.url + ENC, files=files, timeout=10)
    assert_error(resp, 400, "--data-binary")


def test_body_over_limit_is_413(srv: ServerThread) -> None:
    big = b"\x00" * (4 * 1024 * 1024 + 1)
    assert_error(post(srv, ENC, big), 413, "max_body_bytes")

    def chunks() -> Iterator[bytes]:  # no Content-Length: aiohttp's own limit answers
        for _ in range(5):
            yield b"\x00" * (1024 * 1024)

    resp = requests.post(srv.url + ENC, data=chunks(), timeout=10)
    assert_error(resp, 413)


def test_unknown_recipe_is_404(srv: ServerThread) -> None:
    png = png_bytes(part_image(defect=False))
    assert_error(post(srv, ENC, png, recipe="nope"), 404, "recipe", "'nope'", "spots")


def test_unknown_path_and_method_are_json(srv: ServerThread) -> None:
    assert_error(requests.get(srv.url + "/no/such/thing", timeout=10), 404)
    resp = requests.get(srv.url + ENC, timeout=10)
    assert_error(resp, 405)
    assert "POST" in resp.headers["Allow"]


# ------------------------------------------------------------------ API key


def test_api_key_forms() -> None:
    with ServerThread(make_runtime(api_key="k1")) as s:
        png = png_bytes(part_image(defect=False))
        assert_error(post(s, ENC, png), 401, "got none")
        assert_error(post(s, ENC, png, api_key="k2"), 401, "different")
        assert post(s, ENC, png, api_key="k1").status_code == 200
        h = requests.post(s.url + ENC, data=png, headers={"X-API-Key": "k1"}, timeout=10)
        assert h.status_code == 200
        b = requests.post(s.url + ENC, data=png, headers={"Authorization": "Bearer k1"}, timeout=10)
        assert b.status_code == 200
        # the key is checked before anything else: no recipe or size leaks to a stranger
        assert_error(post(s, RAW, b"", width="x", recipe="nope"), 401)
        assert requests.get(s.url + "/ping", timeout=10).status_code == 200


def test_api_key_from_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    with ServerThread(make_runtime(api_key_file=key_file)) as s:
        png = png_bytes(part_image(defect=False))
        assert post(s, ENC, png, api_key="from-file").status_code == 200
        assert_error(post(s, ENC, png, api_key="from-file\n"), 401)


def test_api_key_follows_a_reload(tmp_path: Path) -> None:
    """A SIGHUP reload swaps runtime.settings; the new key applies to the next request."""
    rt = make_runtime(api_key="old")

    def swap(**http: object) -> None:
        new_http = rt.settings.http.model_copy(update=http)
        rt.settings = rt.settings.model_copy(update={"http": new_http})

    with ServerThread(rt) as s:
        png = png_bytes(part_image(defect=False))
        assert post(s, ENC, png, api_key="old").status_code == 200
        swap(api_key="new")
        assert_error(post(s, ENC, png, api_key="old"), 401)
        assert post(s, ENC, png, api_key="new").status_code == 200
        swap(api_key=None, api_key_file=tmp_path / "missing")
        assert_error(post(s, ENC, png, api_key="new"), 503, "readable")  # fails closed
        (tmp_path / "missing").write_text("filed")
        swap(api_key=None, api_key_file=tmp_path / "missing", default_recipe=None)
        assert post(s, ENC, png, api_key="filed").status_code == 200
        swap(api_key=None, api_key_file=None)
        assert post(s, ENC, png).status_code == 200


# ------------------------------------------------------------------ shared memory


def test_shared_memory_read_only_and_validated(srv: ServerThread) -> None:
    image = part_image(defect=True)
    shm = shared_memory.SharedMemory(create=True, size=image.nbytes)
    try:
        view = np.ndarray(image.shape, np.uint8, buffer=shm.buf)
        view[:] = image
        before = bytes(shm.buf)
        ok = post(srv, SHM, width="64", height="48", name=shm.name)
        assert ok.status_code == 200, ok.text
        assert ok.json()["result"] is False
        assert bytes(shm.buf) == before  # never written
        assert post(srv, SHM, width="64", height="48", name="/" + shm.name).status_code == 200
        err = assert_error(post(srv, SHM, width="60", height="48", name=shm.name), 400)
        assert "8640" in err
        assert str(image.nbytes) in err
        del view
    finally:
        shm.close()
        shm.unlink()


@pytest.mark.parametrize(
    "name", ["../etc/passwd", "a/b", "", ".", "..", ".hidden", "x" * 300, "na me", "a\x00b"]
)
def test_shared_memory_bad_names_are_400(srv: ServerThread, name: str) -> None:
    assert_error(post(srv, SHM, width="4", height="4", name=name), 400, "name")


def test_shared_memory_missing_block_and_symlink(srv: ServerThread) -> None:
    assert_error(post(srv, SHM, width="4", height="4", name="edged_no_such_block"), 404, "no such")
    assert_error(post(srv, SHM, width="4", height="4"), 400, "name")
    link = SHM_DIR / f"edged_test_link_{os.getpid()}"
    link.symlink_to("/etc/hostname")
    try:
        assert_error(post(srv, SHM, width="4", height="4", name=link.name), 400, "symbolic link")
    finally:
        link.unlink()


def test_shared_memory_switched_off() -> None:
    with ServerThread(make_runtime(shared_memory=False)) as s:
        assert_error(post(s, SHM, width="4", height="4", name="x"), 403, "shared_memory")
        assert requests.get(s.url + "/version", timeout=10).text.startswith("3.17.0+edged.")


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.8.9.10")
    assert is_loopback("::1")
    assert is_loopback(None)  # Unix socket
    assert not is_loopback("192.168.1.20")
    assert not is_loopback("10.0.0.1")
    assert not is_loopback("fe80::1%eth0")
    assert not is_loopback("not-an-ip")


# ------------------------------------------------------------------ concurrency and deadlines


def _slow_request(s: ServerThread, out: list[requests.Response]) -> None:
    out.append(post(s, ENC, png_bytes(part_image(defect=False)), recipe="slow"))


def _wait_for_active(s: ServerThread, n: int) -> None:
    gate = s.app[PEKAT_STATE].gate
    deadline = time.monotonic() + 5
    while gate.active < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gate.active >= n


def test_busy_is_429_with_retry_after_without_a_queue() -> None:
    with ServerThread(make_runtime(max_concurrent=1, queue_depth=0)) as s:
        out: list[requests.Response] = []
        t = threading.Thread(target=_slow_request, args=(s, out))
        t.start()
        try:
            _wait_for_active(s, 1)
            busy = post(s, ENC, png_bytes(part_image(defect=False)))
            assert_error(busy, 429, "max_concurrent")
            assert busy.headers["Retry-After"] == "1"
        finally:
            t.join()
        assert out[0].status_code == 200
        assert post(s, ENC, png_bytes(part_image(defect=False))).status_code == 200


def test_timeout_is_503_and_the_slot_stays_taken_until_the_work_ends() -> None:
    with ServerThread(make_runtime(max_concurrent=1, queue_depth=0, request_timeout_s=0.2)) as s:
        t0 = time.monotonic()
        resp = post(s, ENC, png_bytes(part_image(defect=False)), recipe="slow")
        assert time.monotonic() - t0 < 0.55  # answered at the deadline, not after the work
        assert_error(resp, 503, "request_timeout_s")
        assert_error(post(s, ENC, png_bytes(part_image(defect=False))), 429)
        time.sleep(0.6)
        assert post(s, ENC, png_bytes(part_image(defect=False))).status_code == 200


def test_a_request_in_line_gets_the_slot_when_it_frees() -> None:
    with ServerThread(make_runtime(max_concurrent=1, queue_depth=1)) as s:
        out: list[requests.Response] = []
        t = threading.Thread(target=_slow_request, args=(s, out))
        t.start()
        try:
            _wait_for_active(s, 1)
            waited = post(s, ENC, png_bytes(part_image(defect=False)))  # waits ~0.6 s in line
        finally:
            t.join()
        assert out[0].status_code == 200
        assert waited.status_code == 200
        assert waited.json()["result"] is True
        text = s.runtime.metrics.render().decode()
        assert "edged_http_queue_wait_seconds_count 1.0" in text


def test_a_wait_longer_than_queue_timeout_is_429() -> None:
    rt = make_runtime(max_concurrent=1, queue_depth=4, queue_timeout_s=0.1)
    with ServerThread(rt) as s:
        out: list[requests.Response] = []
        t = threading.Thread(target=_slow_request, args=(s, out))
        t.start()
        try:
            _wait_for_active(s, 1)
            late = post(s, ENC, png_bytes(part_image(defect=False)))  # the slot is held 0.6 s
        finally:
            t.join()
        assert out[0].status_code == 200
        assert_error(late, 429, "queue_timeout_s")
        assert late.headers["Retry-After"] == "1"
        text = rt.metrics.render().decode()
        assert 'edged_http_refused_total{reason="queue_timeout"} 1.0' in text


def test_slow_body_is_408() -> None:
    with (
        ServerThread(make_runtime(body_timeout_s=0.3)) as s,
        socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock,
    ):
        head = (
            f"POST {RAW}?width=64&height=48 HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {64 * 48}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        sock.sendall(head.encode() + b"\x00" * 100)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 408"), data[:200]
        assert b'"status": 408' in data or b'"status":408' in data


def test_client_gone_mid_body_is_a_400_not_a_500(srv: ServerThread) -> None:
    def counted(status: str) -> float:
        labels = {"route": RAW, "status": status}
        value = srv.runtime.metrics.registry.get_sample_value("edged_http_requests_total", labels)
        return value or 0.0

    before_400 = counted("400")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        head = (
            f"POST {RAW}?width=64&height=48 HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {64 * 48}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"\x00" * 100)
        sock.shutdown(socket.SHUT_WR)  # the client gives up half-way
        while sock.recv(4096):  # aiohttp closes the connection: nothing can be answered
            pass
    deadline = time.monotonic() + 5
    while counted("400") == before_400 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counted("400") == before_400 + 1
    assert counted("500") == 0
