"""The Result: one inspected frame's verdict with its evidence (schema ``edged.result.v1``).

The JSON Schema shipped in ``edged/schemas/result.v1.json`` is generated from these
models (``python -m edged.core.result > edged/schemas/result.v1.json``); a test keeps the
two in step, so MQTT consumers can validate what they receive.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_ID = "edged.result.v1"

Verdict = Literal["pass", "fail", "error"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FrameInfo(_Model):
    """Where the inspected image came from."""

    width: int = Field(ge=1)
    height: int = Field(ge=1)
    pixel_format: str
    seq: int = Field(ge=0, description="edged's per-camera frame counter")
    host_ts: str = Field(description="ISO 8601 UTC time the frame reached edged")
    device_ts_ns: int | None = None
    frame_id: int | None = None
    source: str | None = Field(
        default=None, description="where the image came from, e.g. the file edged analyze read"
    )


class RegionModel(_Model):
    """A region found by a check, in pixels of the inspected image."""

    x: int
    y: int
    width: int = Field(ge=0)
    height: int = Field(ge=0)
    label: str
    check: str
    score: float | None = None
    area_px: int | None = None


class Result(_Model):
    """One inspection's verdict and evidence."""

    schema_: Literal["edged.result.v1"] = Field(default="edged.result.v1", alias="schema")
    id: str = Field(description="unique id; consumers de-duplicate on it")
    seq: int = Field(ge=0, description="per-camera result counter (monotonic within a run)")
    node: str
    camera: str
    recipe: str
    ts: str = Field(description="ISO 8601 UTC time the result was made")
    frame: FrameInfo
    verdict: Verdict
    reasons: list[str] = Field(
        default_factory=list, description="every broken limit, or the error, in words"
    )
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    regions: list[RegionModel] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    ground_truth: dict[str, Any] | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), separators=(",", ":"), allow_nan=False)

    def compact(self) -> dict[str, Any]:
        """The compact verdict message for PLCs: ``{id, seq, camera, recipe, verdict, ts}``."""
        return {
            "id": self.id,
            "seq": self.seq,
            "camera": self.camera,
            "recipe": self.recipe,
            "verdict": self.verdict,
            "ts": self.ts,
        }


def new_result_id() -> str:
    """A unique, time-ordered id (UUIDv7 layout, hex): sorts by creation time."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def iso_utc(ts_ns: int) -> str:
    """``time.time_ns()`` value as ISO 8601 UTC with milliseconds."""
    secs, ns = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{ns // 1_000_000:03d}Z"


def json_schema() -> dict[str, Any]:
    schema = Result.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    return schema


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
