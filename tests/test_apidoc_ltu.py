"""The LTU Compute API document (../shared/api-docs/ltu-compute-api.txt) as a contract.

Every request the document shows (its cUrl lines and Python samples, with their
spellings) is replayed with ``requests`` against edged's real app; the vendor's
image URLs are served by a local file server. Each test asserts the documented
response shape (keys, nesting, types, units) and, where a known answer exists,
the meaning: a matrix that aligns, a mask that covers the drawn object, a distance
that says "Match" for a shifted copy. A renamed documented field fails here.

Where the document's samples cannot be replayed as printed (garbled quotes, a
Python dict written with ``=``), the closest valid request is sent; comments say so.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest
import requests
from _apidoc_helpers import (
    DISK_CENTER,
    DISK_RADIUS,
    TOKEN,
    FileServer,
    decode_image_object,
    edged_server,
    encode,
    iou,
    nobita,
)
from _http_helpers import ServerThread
from _refs_helpers import capture, paint_square, world

HEADERS = {"authorization": f"Bearer {TOKEN}"}
SHIFT = (6.0, 4.0)
DEFECT = (200, 150, 14)  # x, y, size on image2


@pytest.fixture(scope="module")
def scene() -> dict[str, np.ndarray]:
    img, truth = nobita()
    wld = world((320, 240), seed=41, colour=True)
    ref = capture(wld, noise=1.0, seed=1)
    moved = capture(wld, dx=SHIFT[0], dy=SHIFT[1], noise=1.0, seed=2)
    return {
        "nobita": img,
        "truth": truth,
        "ref": ref,
        "moved": moved,
        "defect": paint_square(moved, *DEFECT, -90),
    }


@pytest.fixture(scope="module")
def files(scene: dict[str, np.ndarray]) -> Iterator[FileServer]:
    content = {
        "Nobita.jpg": encode(scene["nobita"], ".jpg"),
        "16-1.png": encode(scene["ref"], ".png"),
        "16-2.png": encode(scene["defect"], ".png"),
    }
    with FileServer(content) as server:
        yield server


@pytest.fixture(scope="module")
def edged() -> Iterator[ServerThread]:
    with edged_server() as server:
        yield server


def _api(edged: ServerThread, service: str) -> str:
    return f"{edged.url}/v2/services/image/{service}"


def _ok(resp: requests.Response, name: str) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert isinstance(body["result"], dict)
    details = body["details"]
    assert details["name"] == name
    assert isinstance(details["score"], int | float)
    assert isinstance(details["message"], str)
    assert isinstance(details["info"], dict)
    assert isinstance(body["version"], str)
    return body


# --------------------------------------------------------------------------- sending images


def test_image_by_url_urlencoded_curl(edged: ServerThread, files: FileServer) -> None:
    # curl -d 'image=http://.../Nobita.jpg' -X POST .../heatMap --header "authorization: Bearer"
    resp = requests.post(
        _api(edged, "heatMap"),
        data=f"image={files.url('Nobita.jpg')}",
        headers=HEADERS | {"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    _ok(resp, "heatmap")


def test_image_as_binary_and_as_base64(edged: ServerThread, scene: dict[str, np.ndarray]) -> None:
    jpg = encode(scene["nobita"], ".jpg")
    url = _api(edged, "colorPalette")
    by_file = _ok(
        requests.post(url, headers=HEADERS, files={"image": jpg}, timeout=30), "colorPalette"
    )
    encoded = base64.b64encode(jpg).decode("utf8")
    by_text = _ok(
        requests.post(url, headers=HEADERS, data={"image": encoded}, timeout=30), "colorPalette"
    )
    assert by_file["result"]["colors"] == by_text["result"]["colors"]
    # the opencv sample: PNG bytes, base64 as bytes (not str) in the form
    png_b64 = base64.b64encode(cv2.imencode(".png", scene["nobita"])[1])
    by_png = requests.post(url, headers=HEADERS, data={"image": png_b64}, timeout=30)
    _ok(by_png, "colorPalette")


def test_get_with_query_parameters(edged: ServerThread, files: FileServer) -> None:
    # "It requires a GET or a POST request"; short values may go in the query string.
    resp = requests.get(
        _api(edged, "colorPalette"),
        params={"image": files.url("Nobita.jpg")},
        headers=HEADERS,
        timeout=30,
    )
    _ok(resp, "colorPalette")


def test_gif_is_an_accepted_format(edged: ServerThread, scene: dict[str, np.ndarray]) -> None:
    gif = encode(scene["nobita"], ".gif")
    assert gif.startswith(b"GIF8")
    resp = requests.post(
        _api(edged, "colorPalette"), headers=HEADERS, files={"image": gif}, timeout=30
    )
    _ok(resp, "colorPalette")


# --------------------------------------------------------------------------- image infos


def test_heatmap(edged: ServerThread, files: FileServer) -> None:
    data = {"image": files.url("Nobita.jpg")}
    body = _ok(
        requests.post(_api(edged, "heatMap"), headers=HEADERS, data=data, timeout=30), "heatmap"
    )
    heat = decode_image_object(body["result"]["heatmap"])
    assert heat.ndim in (2, 3)
    assert isinstance(body["details"]["info"]["signature"], int)
    assert body["details"]["score"] == 0


def test_color_palette(
    edged: ServerThread, files: FileServer, scene: dict[str, np.ndarray]
) -> None:
    resp = requests.post(
        _api(edged, "colorPalette"),
        headers=HEADERS,
        data={"image": files.url("Nobita.jpg")},
        timeout=30,
    )
    body = _ok(resp, "colorPalette")
    colors = body["result"]["colors"]
    assert all(len(c) == 4 for c in colors)
    assert all(isinstance(v, int) for c in colors for v in c[:3])
    assert sum(c[3] for c in colors) == pytest.approx(100, abs=1.5)
    disk_per = 100 * scene["truth"].mean()
    red = [
        c for c in colors if abs(c[0] - 164) <= 12 and abs(c[1] - 21) <= 12 and abs(c[2] - 54) <= 12
    ]
    assert red
    assert red[0][3] == pytest.approx(disk_per, abs=3)
    details = body["details"]
    assert details["info"]["count"] == len(colors)
    assert details["info"]["format"] == "RGB%"
    assert details["message"] == f"Found {len(colors)} colors"
    assert details["score"] == 0
    # the binary sample: files={'image': img}
    jpg = encode(scene["nobita"], ".jpg")
    _ok(
        requests.post(
            _api(edged, "colorPalette"), headers=HEADERS, files={"image": jpg}, timeout=30
        ),
        "colorPalette",
    )


def test_object_mask_detection_curl(edged: ServerThread, scene: dict[str, np.ndarray]) -> None:
    # curl -F 'image=@"./Nobita.jpg"' ... -F 'algorithm="SOBEL"' -F 'only_biggest="True"'
    # (curl sends the quoted values unquoted)
    jpg = encode(scene["nobita"], ".jpg")
    resp = requests.post(
        _api(edged, "objectMaskDetection"),
        headers=HEADERS,
        files={
            "image": ("Nobita.jpg", jpg),
            "algorithm": (None, "SOBEL"),
            "only_biggest": (None, "True"),
        },
        timeout=30,
    )
    body = _ok(resp, "objectMaskDetection")
    mask = decode_image_object(body["result"]["binary mask"])
    assert mask.shape == scene["truth"].shape
    assert iou(mask > 0, scene["truth"]) > 0.9
    assert isinstance(body["details"]["info"]["channel"], str)


def test_object_mask_detection_python(edged: ServerThread, scene: dict[str, np.ndarray]) -> None:
    # files = {'image': img}; data = {'image': img, 'channel': 'S'}: the image both as a
    # file and as a field, channel S without a color_space (S of HSV)
    jpg = encode(scene["nobita"], ".jpg")
    resp = requests.post(
        _api(edged, "objectMaskDetection"),
        headers=HEADERS,
        files={"image": jpg},
        data={"image": jpg, "channel": "S"},
        timeout=30,
    )
    body = _ok(resp, "objectMaskDetection")
    mask = decode_image_object(body["result"]["binary mask"])
    assert iou(mask > 0, scene["truth"]) > 0.9
    assert body["details"]["info"]["channel"] == "S"
    assert body["details"]["message"] == "Succeded to detect object using channel S"


def test_contours(edged: ServerThread, scene: dict[str, np.ndarray]) -> None:
    jpg = encode(scene["nobita"], ".jpg")
    resp = requests.post(
        _api(edged, "contours"),
        headers=HEADERS,
        files={"image": jpg},
        data={"channel": "V"},
        timeout=30,
    )
    body = _ok(resp, "contours")
    contours = body["result"]["contours"]
    assert contours
    biggest = contours[0]
    box = biggest["boundingBox"]
    cx, cy = DISK_CENTER
    r = DISK_RADIUS
    assert (box["x"], box["y"], box["width"], box["height"]) == pytest.approx(
        (cx - r, cy - r, 2 * r + 1, 2 * r + 1), abs=3
    )
    verts = biggest["relativeVertices"]
    assert all(set(v) >= {"x", "y"} and isinstance(v["x"], int) for v in verts)
    xs = [v["x"] for v in verts]
    ys = [v["y"] for v in verts]
    # pixels relative to the bounding box
    assert min(xs) >= 0
    assert min(ys) >= 0
    assert max(xs) == pytest.approx(box["width"] - 1, abs=2)
    assert max(ys) == pytest.approx(box["height"] - 1, abs=2)
    n = body["details"]["info"]["nbContours"]
    assert n == len(contours)
    assert body["details"]["message"] == f"Got {n} contours"


@pytest.mark.parametrize(
    ("tmin", "tmax"),
    [(50, 100), (50, 10)],  # cUrl; the Python sample's (threshold_max below threshold_min)
)
def test_edges(edged: ServerThread, scene: dict[str, np.ndarray], tmin: int, tmax: int) -> None:
    jpg = encode(scene["nobita"], ".jpg")
    resp = requests.post(
        _api(edged, "edges"),
        headers=HEADERS,
        files={"image": jpg},
        data={"threshold_min": tmin, "threshold_max": tmax, "edge_thickness": 1},
        timeout=30,
    )
    body = _ok(resp, "edges")
    edges = decode_image_object(body["result"]["edges"])
    assert edges.shape == scene["truth"].shape
    # the disk's outline is an edge; its centre is not
    cx, cy = DISK_CENTER
    assert edges[cy, cx] == 0
    assert np.count_nonzero(edges[cy, cx - DISK_RADIUS - 2 : cx - DISK_RADIUS + 3]) >= 1
    assert body["details"]["message"] == "Edges found."


def test_image_quality_curl(edged: ServerThread, scene: dict[str, np.ndarray]) -> None:
    # curl ... -F 'bins=255' -F 'tolerence=0.1'
    img = scene["nobita"].copy()
    img[:24] = 0  # 10 % of the pixels black
    img[-12:] = 255  # 5 % white
    resp = requests.post(
        _api(edged, "imageQuality"),
        headers=HEADERS,
        files={
            "image": ("image.jpg", encode(img, ".png")),
            "bins": (None, "255"),
            "tolerence": (None, "0.1"),
        },
        timeout=30,
    )
    body = _ok(resp, "quality")
    result = body["result"]
    assert result["encoding"] == "OK"
    b = result["brightness"]
    assert b["under_per"] == pytest.approx(10.0, abs=0.2)
    assert b["over_per"] == pytest.approx(5.0, abs=0.2)
    under = decode_image_object(b["under_mask"])
    over = decode_image_object(b["over_mask"])
    assert under.shape == over.shape == img.shape[:2]
    assert np.count_nonzero(under[:24]) == 24 * 320
    assert np.count_nonzero(under[30:-30]) == 0
    hist = base64.b64decode(b["l_hist"], validate=True)
    assert len(hist) == 255
    assert max(hist) == 255
    assert isinstance(b["l_mean"], float)
    assert isinstance(b["l_std"], float)
    s = result["sharpness"]
    for key in ("val", "sml", "val_norm", "sml_norm"):
        assert isinstance(s[key], float)
    assert 0 <= s["val_norm"] < 1
    assert 0 <= s["sml_norm"] < 1
    assert isinstance(result["noise"], str)
    assert isinstance(body["details"]["info"]["description"], str)


def test_image_quality_tolerance_is_a_percentage(
    edged: ServerThread, scene: dict[str, np.ndarray]
) -> None:
    img = scene["nobita"].copy()
    img[:24] = 5  # dark, not black: within 2.5 % of the range (6.4 levels), not 1 % (2.55)
    url = _api(edged, "imageQuality")
    png = encode(img, ".png")
    wide = _ok(
        requests.post(
            url, headers=HEADERS, files={"image": png}, data={"tolerance": "2.5"}, timeout=30
        ),
        "quality",
    )
    narrow = _ok(
        requests.post(
            url, headers=HEADERS, files={"image": png}, data={"tolerance": "1"}, timeout=30
        ),
        "quality",
    )
    assert wide["result"]["brightness"]["under_per"] == pytest.approx(10.0, abs=0.2)
    assert narrow["result"]["brightness"]["under_per"] == pytest.approx(0.0, abs=0.2)
    # the Python sample sends only the image
    _ok(requests.post(url, headers=HEADERS, files={"image": png}, timeout=30), "quality")


# --------------------------------------------------------------------------- compare images


def _distance_shape(body: dict[str, Any]) -> None:
    assert body["code"] == 0
    assert body["errors"] == []
    assert body["source"] == {}
    result = body["result"]
    assert isinstance(result["distance"], float)
    documented = (
        "boxCoveredSurface",
        "boxPointsRatio",
        "boxPointsRatioHomography",
        "matchStrength",
        "matchStrengthWithoutWeighting",
    )
    for key in documented:
        assert isinstance(result["scores"][key], float)
        assert 0.0 <= result["scores"][key] <= 1.0
    for side in ("query", "reference"):
        part = result[side]
        assert 0 <= part["area"] <= 1
        assert len(part["resizedDimensions"]) == 2
        assert part["originalDimensions"] == [320, 240]
        box = part["matchingBox"]
        assert len(box) == 4
        assert all(len(p) == 2 and 0 <= p[0] <= 1 and 0 <= p[1] <= 1 for p in box)
    info = body["details"]["info"]
    assert info["distance"] == result["distance"]
    assert body["details"]["message"] == f"Decision from distance calculation: {info['decision']}"


def test_distance_curl_two_parts_named_image(
    edged: ServerThread, scene: dict[str, np.ndarray]
) -> None:
    # curl -F 'image=@image1.jpg' -F 'image=@image2.jpg' .../distance
    resp = requests.post(
        _api(edged, "distance"),
        headers=HEADERS,
        files=[
            ("image", ("image1.png", encode(scene["ref"], ".png"))),
            ("image", ("image2.png", encode(scene["moved"], ".png"))),
        ],
        timeout=30,
    )
    body = _ok(resp, "distance")
    _distance_shape(body)
    assert body["result"]["distance"] < 1.0
    assert body["details"]["info"]["decision"] == "Match"


def test_distance_python(edged: ServerThread, scene: dict[str, np.ndarray]) -> None:
    files = {"refImage": encode(scene["ref"], ".png"), "queryImage": encode(scene["moved"], ".png")}
    body = _ok(
        requests.post(_api(edged, "distance"), headers=HEADERS, files=files, timeout=30), "distance"
    )
    _distance_shape(body)
    assert body["details"]["info"]["decision"] == "Match"
    # the matching box of a shifted copy covers most of each image
    assert body["result"]["query"]["area"] > 0.8


def _warp_error(src: np.ndarray, dst: np.ndarray, matrix: list[float] | None) -> float:
    h, w = dst.shape[:2]
    m = np.eye(3) if matrix is None else np.array(matrix, np.float64).reshape(3, 3)
    warped = cv2.warpPerspective(src, m, (w, h))
    inner = (slice(30, h - 30), slice(30, w - 30))
    return float(np.mean(np.abs(warped[inner].astype(float) - dst[inner].astype(float))))


def test_differences_curl_images_differences_by_url(edged: ServerThread, files: FileServer) -> None:
    # curl -d 'image1=http://.../16-1.png' -d 'image2=http://.../16-2.png' -d 'preset=4'
    #   -X POST .../imagesDifferences
    data = {"image1": files.url("16-1.png"), "image2": files.url("16-2.png"), "preset": "4"}
    body = _ok(
        requests.post(_api(edged, "imagesDifferences"), headers=HEADERS, data=data, timeout=60),
        "differences",
    )
    _differences_shape(body)
    assert body["details"]["info"]["count"] == len(body["result"]["diffOnImage1"]) >= 1


def _differences_shape(body: dict[str, Any]) -> None:
    assert body["code"] == 0
    assert body["errors"] == []
    assert isinstance(body["details"]["score"], float)
    for key in ("diffOnImage1", "diffOnImage2"):
        for diff in body["result"][key]:
            assert set(diff["boundingBox"]) >= {"x", "y", "width", "height"}
            circle = diff["enclosingCircle"]
            assert isinstance(circle["radius"], float)
            assert set(circle["center"]) == {"x", "y"}
            for v in diff["relativeVertices"]:
                assert isinstance(v["x"], int)
                assert isinstance(v["y"], int)


def test_differences_python(edged: ServerThread, scene: dict[str, np.ndarray]) -> None:
    files = {"image1": encode(scene["ref"], ".png"), "image2": encode(scene["defect"], ".png")}
    data = {
        "output_format": "json",
        "version": "Custom",
        "mask_type": None,  # requests leaves it out
        "mask_thickness": 2,
        "mask_color": "255,0,0,125",
        "vertices": True,
        "transform": True,
        # the document's sample is not valid Python; this is its JSON
        "fic_settings": json.dumps(
            {"resolution": 600, "threshold": 1.4, "smooth": 1.4, "margin": 0}
        ),
    }
    resp = requests.post(
        _api(edged, "differences"), headers=HEADERS, files=files, data=data, timeout=60
    )
    body = _ok(resp, "differences")
    _differences_shape(body)
    result = body["result"]
    x, y, size = DEFECT
    hits = [
        d
        for d in result["diffOnImage2"]
        if abs(d["boundingBox"]["x"] - x) <= 3 and abs(d["boundingBox"]["y"] - y) <= 3
    ]
    assert hits, result["diffOnImage2"]
    diff = hits[0]
    assert diff["boundingBox"]["width"] == pytest.approx(size, abs=3)
    c = diff["enclosingCircle"]["center"]
    assert (c["x"], c["y"]) == pytest.approx((x + size / 2, y + size / 2), abs=2)
    rel = diff["relativeVertices"]
    assert max(v["x"] for v in rel) == pytest.approx(diff["boundingBox"]["width"] - 1, abs=2)
    mask = decode_image_object(diff["mask"])
    assert mask.shape[:2] == (diff["boundingBox"]["height"], diff["boundingBox"]["width"])
    # matOn1 aligns image 1 on image 2, matOn2 image 2 on image 1; flat lists of 9
    assert len(result["matOn1"]) == 9
    assert len(result["matOn2"]) == 9
    ref, moved = scene["ref"], scene["defect"]
    assert _warp_error(ref, moved, result["matOn1"]) < 0.5 * _warp_error(ref, moved, None)
    assert _warp_error(moved, ref, result["matOn2"]) < 0.5 * _warp_error(moved, ref, None)
    assert result["matOn1"][2] == pytest.approx(SHIFT[0], abs=1)


def test_differences_threshold_on_the_document_scale(
    edged: ServerThread, scene: dict[str, np.ndarray]
) -> None:
    # a faint defect: found with a strict threshold (high), not with a lax one (low)
    faint = paint_square(scene["ref"], 60, 60, 16, 14)
    files = {"image1": encode(scene["ref"], ".png"), "image2": encode(faint, ".png")}
    url = _api(edged, "differences")

    def count(threshold: float) -> int:
        data = {"fic_settings": json.dumps({"threshold": threshold})}
        body = _ok(
            requests.post(url, headers=HEADERS, files=files, data=data, timeout=60), "differences"
        )
        return int(body["details"]["info"]["count"])

    assert count(3.0) >= 1
    assert count(0.1) == 0
    default = _ok(requests.post(url, headers=HEADERS, files=files, timeout=60), "differences")
    assert default["details"]["info"]["resolution"] == 400


def test_alignment_matrix_curl(
    edged: ServerThread, files: FileServer, scene: dict[str, np.ndarray]
) -> None:
    data = {"image1": files.url("16-1.png"), "image2": files.url("16-2.png"), "resolution": "512"}
    body = _ok(
        requests.post(_api(edged, "alignmentMatrix"), headers=HEADERS, data=data, timeout=60),
        "alignmentMatrix",
    )
    _alignment_shape(body, scene)


def test_alignment_matrix_python(edged: ServerThread, scene: dict[str, np.ndarray]) -> None:
    files = {"image1": encode(scene["ref"], ".png"), "image2": encode(scene["defect"], ".png")}
    for resolution in (512, 1200):  # above 900 too
        resp = requests.post(
            _api(edged, "alignmentMatrix"),
            headers=HEADERS,
            files=files,
            data={"resolution": resolution},
            timeout=60,
        )
        _alignment_shape(_ok(resp, "alignmentMatrix"), scene)


def _alignment_shape(body: dict[str, Any], scene: dict[str, np.ndarray]) -> None:
    result = body["result"]
    m1, m2 = result["matrix1"], result["matrix2"]
    assert len(m1) == 9
    assert len(m2) == 9
    assert all(isinstance(v, float) for v in m1 + m2)
    ref, moved = scene["ref"], scene["defect"]
    assert _warp_error(ref, moved, m1) < 0.5 * _warp_error(ref, moved, None)
    assert _warp_error(moved, ref, m2) < 0.5 * _warp_error(moved, ref, None)
    assert body["details"]["message"] == "Alignment Matrices properly calculated"
    assert body["details"]["score"] == 0


def test_alignment_return_image(edged: ServerThread, scene: dict[str, np.ndarray]) -> None:
    files = {"image1": encode(scene["ref"], ".png"), "image2": encode(scene["defect"], ".png")}
    resp = requests.post(
        _api(edged, "alignmentMatrix"),
        headers=HEADERS,
        files=files,
        data={"return_image": "True"},
        timeout=60,
    )
    body = _ok(resp, "alignmentMatrix")
    image = decode_image_object(body["result"]["image"])
    assert image.shape == scene["ref"].shape


# --------------------------------------------------------------------------- errors


def _error(resp: requests.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["result"] is None
    assert isinstance(body["details"]["message"], str)
    assert body["details"]["message"]
    assert body["code"] != 0
    assert body["errors"]
    assert isinstance(body["errors"][0], str)
    return body


def test_errors_in_the_envelope(edged: ServerThread, scene: dict[str, np.ndarray]) -> None:
    png = encode(scene["nobita"], ".png")
    _error(requests.post(_api(edged, "colorPalette"), files={"image": png}, timeout=30), 401)
    _error(
        requests.post(
            _api(edged, "noSuchService"), headers=HEADERS, files={"image": png}, timeout=30
        ),
        404,
    )
    _error(
        requests.put(
            _api(edged, "colorPalette"), headers=HEADERS, files={"image": png}, timeout=30
        ),
        405,
    )
    _error(
        requests.post(
            _api(edged, "colorPalette"), headers=HEADERS, data={"image": "not base64!"}, timeout=30
        ),
        400,
    )
    body = _error(
        requests.post(
            _api(edged, "colorPalette"),
            headers=HEADERS,
            data={"image": "http://169.254.169.254/x.png"},
            timeout=30,
        ),
        400,
    )
    assert "http.url_fetch_hosts" in body["details"]["message"]
