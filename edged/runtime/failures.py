"""The last failed parts on disk: a bounded ring of annotated JPEGs with their Results.

Memory is for frames in flight; the evidence of failed parts (what the web page's
*Last failures* view and ``GET /api/v1/failures`` show) lives under
``state_dir/failures/<camera>/`` as ``<result id>.jpg`` (the frame with its defect
boxes and labels) and ``<result id>.json`` (the Result). A restart finds them again
and orders them by their Results' time and sequence number.

Two caps hold at all times: at most ``keep_per_camera`` parts per camera, and at most
``max_bytes`` for all cameras' files together; the oldest parts go first. Files are
written atomically (temporary file, then rename), so a crash leaves whole parts or
none. Every method blocks on disk: call them from a worker thread.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edged.core.errors import NotFoundError
from edged.core.names import NAME_RE
from edged.core.result import Result

log = logging.getLogger("edged.failures")

_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True, slots=True)
class FailedPart:
    """One kept failed part: what the listing shows without reading its files."""

    id: str
    camera: str
    recipe: str
    seq: int
    ts: str
    reasons: tuple[str, ...]
    regions: int
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "camera": self.camera,
            "recipe": self.recipe,
            "seq": self.seq,
            "ts": self.ts,
            "reasons": list(self.reasons),
            "regions": self.regions,
            "bytes": self.size_bytes,
        }


def _part_of(doc: dict[str, Any], size_bytes: int) -> FailedPart:
    return FailedPart(
        id=str(doc["id"]),
        camera=str(doc["camera"]),
        recipe=str(doc["recipe"]),
        seq=int(doc["seq"]),
        ts=str(doc["ts"]),
        reasons=tuple(str(r) for r in doc.get("reasons", [])),
        regions=len(doc.get("regions", [])),
        size_bytes=size_bytes,
    )


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class FailureRing:
    """The bounded on-disk ring of failed parts under ``root`` (see the module docstring)."""

    def __init__(self, root: Path, *, keep_per_camera: int, max_bytes: int) -> None:
        if keep_per_camera < 1 or max_bytes < 1:
            msg = (
                "failure ring: expected keep_per_camera >= 1 and max_bytes >= 1, "
                f"got {keep_per_camera} and {max_bytes}"
            )
            raise ValueError(msg)
        self.root = root
        self.keep_per_camera = keep_per_camera
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._parts: dict[str, list[FailedPart]] = {}  # per camera, oldest first
        self._order: list[FailedPart] = []  # all cameras, oldest first (as added)
        self._bytes = 0
        self._scan()

    # ------------------------------------------------------------------ writing

    def add(self, result: Result, jpeg: bytes) -> FailedPart:
        """Keep ``result`` (a failed part) with its annotated ``jpeg``; drop the oldest
        parts beyond the caps. Returns the kept part."""
        doc = result.to_json_dict()
        body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
        part = _part_of(doc, len(body) + len(jpeg))
        if not _ID_RE.match(part.id) or not NAME_RE.match(part.camera):
            msg = (
                "failure ring: expected a result id and a camera name, "
                f"got {part.id!r} and {part.camera!r}"
            )
            raise ValueError(msg)
        with self._lock:
            cdir = self.root / part.camera
            cdir.mkdir(parents=True, exist_ok=True)
            _write_atomic(cdir / f"{part.id}.jpg", jpeg)
            _write_atomic(cdir / f"{part.id}.json", body)
            self._keep(part)
            self._prune()
        return part

    def _keep(self, part: FailedPart) -> None:
        self._parts.setdefault(part.camera, []).append(part)
        self._order.append(part)
        self._bytes += part.size_bytes

    def _prune(self) -> None:
        for parts in self._parts.values():
            while len(parts) > self.keep_per_camera:
                self._remove(parts[0])
        while self._bytes > self.max_bytes and self._order:
            self._remove(self._order[0])

    def _remove(self, part: FailedPart) -> None:
        self._parts[part.camera].remove(part)
        self._order.remove(part)
        self._bytes -= part.size_bytes
        for suffix in (".jpg", ".json"):
            (self.root / part.camera / f"{part.id}{suffix}").unlink(missing_ok=True)

    # ------------------------------------------------------------------ reading

    def parts(self, camera: str | None = None, n: int | None = None) -> list[FailedPart]:
        """The kept parts, newest first: of one camera, or of all (``camera`` None)."""
        with self._lock:
            items = list(self._order if camera is None else self._parts.get(camera, []))
        items.reverse()
        return items if n is None else items[:n]

    def cameras(self) -> list[str]:
        with self._lock:
            return sorted(c for c, parts in self._parts.items() if parts)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def _path(self, camera: str, part_id: str, suffix: str) -> Path:
        with self._lock:
            known = any(p.id == part_id for p in self._parts.get(camera, []))
        if not known:
            msg = (
                f"failed part: expected the id of a kept part of camera {camera!r}, got {part_id!r}"
            )
            raise NotFoundError(msg)
        return self.root / camera / f"{part_id}{suffix}"

    def result(self, camera: str, part_id: str) -> dict[str, Any]:
        """The Result JSON of one kept part (NotFoundError when it is not kept)."""
        path = self._path(camera, part_id, ".json")
        try:
            doc: dict[str, Any] = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            msg = f"failed part {part_id!r} of camera {camera!r}: no longer readable ({exc})"
            raise NotFoundError(msg) from exc
        return doc

    def image(self, camera: str, part_id: str) -> bytes:
        """The annotated JPEG of one kept part (NotFoundError when it is not kept)."""
        path = self._path(camera, part_id, ".jpg")
        try:
            return path.read_bytes()
        except OSError as exc:
            msg = f"failed part {part_id!r} of camera {camera!r}: no longer readable ({exc})"
            raise NotFoundError(msg) from exc

    # ------------------------------------------------------------------ start-up

    def _scan(self) -> None:
        """Index what a previous run left (whole parts only; strays are removed)."""
        if not self.root.is_dir():
            return
        found: list[FailedPart] = []
        for cdir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if not NAME_RE.match(cdir.name):
                continue
            for path in sorted(cdir.iterdir()):
                if path.name.startswith("."):  # a temporary file of an interrupted write
                    path.unlink(missing_ok=True)
                    continue
                if path.suffix != ".json" or not _ID_RE.match(path.stem):
                    continue
                jpg = path.with_suffix(".jpg")
                try:
                    body = path.read_bytes()
                    part = _part_of(json.loads(body), len(body) + jpg.stat().st_size)
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    log.warning("failure ring: dropping unreadable %s (%s)", path, exc)
                    path.unlink(missing_ok=True)
                    jpg.unlink(missing_ok=True)
                    continue
                if part.camera == cdir.name and part.id == path.stem:
                    found.append(part)
            for jpg in cdir.glob("*.jpg"):  # an image whose Result never got written
                if not jpg.with_suffix(".json").exists():
                    jpg.unlink(missing_ok=True)
        for part in sorted(found, key=lambda p: (p.ts, p.camera, p.seq)):
            self._keep(part)
        self._prune()
