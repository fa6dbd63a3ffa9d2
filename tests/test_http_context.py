"""The PEKAT context and how responses carry it (pure functions, no server)."""

from __future__ import annotations

import base64
import json
import math

import numpy as np

from edged.checks import Region
from edged.core.result import FrameInfo
from edged.http._context import (
    HEADER_CONTEXT_MAX_CHARS,
    detected_rectangles,
    dumps,
    header_context,
    header_context_json,
    image_response,
    pekat_context,
)
from edged.recipes.inspection import Inspection, build_result


def _result(regions: tuple[Region, ...], verdict: str = "fail"):  # type: ignore[no-untyped-def]
    inspection = Inspection("r", verdict, ("x",), {"c": {"n": len(regions)}}, regions, {"c": 1.0})  # type: ignore[arg-type]
    frame = FrameInfo(width=100, height=50, pixel_format="BGR8", seq=3, host_ts="t")
    return build_result(inspection, node="n", camera="http", seq=3, frame=frame)


def test_context_fields() -> None:
    regions = (Region(1, 2, 3, 4, "spot", "c", score=0.5), Region(5, 6, 7, 8, "edge", "c"))
    ctx = pekat_context(_result(regions), data="lot", complete_time_s=0.0123456789)
    assert ctx["detectedRectangles"] == [
        {"id": 0, "x": 1, "y": 2, "width": 3, "height": 4, "classNames": [{"label": "spot"}],
         "check": "c", "confidence": 0.5},
        {"id": 1, "x": 5, "y": 6, "width": 7, "height": 8, "classNames": [{"label": "edge"}],
         "check": "c"},
    ]  # fmt: skip
    assert ctx["result"] is False
    assert ctx["data"] == "lot"
    assert ctx["completeTime"] == 0.012346
    assert ctx["imageShape"] == {"height": 50, "width": 100}
    assert pekat_context(_result((), "pass"), data="", complete_time_s=0)["result"] is True
    assert pekat_context(_result((), "error"), data="", complete_time_s=0)["result"] is False
    assert detected_rectangles(_result(())) == []


def test_dumps_is_strict_json() -> None:
    doc = {"a": float("nan"), "b": [np.float32(1.5), np.int64(7), np.arange(3)], "c": math.inf}
    assert json.loads(dumps(doc)) == {"a": None, "b": [1.5, 7, [0, 1, 2]], "c": None}
    assert dumps({"é": "ü"}).decode("utf-8") == '{"é":"ü"}'
    assert dumps({"a": "x\udcffy"}) == b'{"a":"x?y"}'
    from pathlib import Path

    assert json.loads(dumps({"p": Path("/a/b"), "s": {2, 1}})) == {"p": "/a/b", "s": [1, 2]}


def test_header_context_fits_by_cutting_region_lists() -> None:
    regions = tuple(Region(i, i, 2, 2, "spot", "c", score=0.9) for i in range(3000))
    ctx = pekat_context(_result(regions), data="d", complete_time_s=0.1)
    assert len(base64.b64encode(dumps(ctx))) > HEADER_CONTEXT_MAX_CHARS
    encoded = header_context(ctx)
    assert len(encoded) <= HEADER_CONTEXT_MAX_CHARS
    short = json.loads(base64.b64decode(encoded))
    kept = short["truncated"]["kept"]
    assert short["truncated"]["detectedRectangles"] == 3000
    assert 0 < kept < 3000
    assert len(short["detectedRectangles"]) == len(short["regions"]) == kept
    assert short["detectedRectangles"][0] == ctx["detectedRectangles"][0]
    small = pekat_context(_result(regions[:3]), data="d", complete_time_s=0.1)
    assert json.loads(base64.b64decode(header_context(small))) == small
    as_json = header_context_json(ctx)
    assert len(as_json) <= HEADER_CONTEXT_MAX_CHARS
    assert json.loads(as_json)["truncated"]["detectedRectangles"] == 3000
    assert json.loads(header_context_json(small)) == small


def test_image_response_layouts() -> None:
    ctx = {"result": True, "data": "ü"}
    in_body = image_response(b"PNGDATA", ctx, context_in_body=True)
    assert in_body.headers["ImageLen"] == "7"
    assert in_body.body[:7] == b"PNGDATA"
    assert json.loads(in_body.body[7:]) == ctx
    in_header = image_response(b"PNGDATA", ctx, context_in_body=False, headers={"X-A": "b"})
    assert in_header.body == b"PNGDATA"
    assert in_header.content_type == "image/png"
    assert json.loads(base64.b64decode(in_header.headers["ContextBase64utf"])) == ctx
    # the short PEKAT document's header: the same context as ASCII JSON
    assert in_header.headers["context"].isascii()
    assert json.loads(in_header.headers["context"]) == ctx
    assert in_header.headers["X-A"] == "b"
