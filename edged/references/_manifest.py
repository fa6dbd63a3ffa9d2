"""Reading the store's layout: names, version directories, ``CURRENT``, manifests.

Layout under the store's root::

    <recipe>/<camera>/
        CURRENT              the current version's directory name ("v0003")
        v0001/ v0002/ v0003/ one directory per version, never changed once written:
            manifest.json    who/when/what: schema, version, created, created_by,
                             source, note, params, images (file, sha256, size), roi
            images/000.png   the good images as taught (lossless)
            roi.png          the ROI mask (255 = inspected), when one was given
            prepared.npz     the trained model and the precomputed registration data
        .tmp-<id>/           a version being written (ignored; removed later)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edged.core.errors import EdgedError, InputError
from edged.core.names import NAME_RE

SCHEMA = "edged.reference.v1"
_VERSION_RE = re.compile(r"^v(\d{4,})$")


@dataclass(frozen=True, slots=True)
class ReferenceInfo:
    """One stored version of a recipe/camera reference (from its manifest)."""

    recipe: str
    camera: str
    version: int
    created: str
    created_by: str
    source: str
    note: str
    n_images: int
    size_wh: tuple[int, int]
    colour: bool
    kind: str  # "single" or "variation"
    params: Mapping[str, Any]
    current: bool
    path: Path

    @property
    def version_id(self) -> str:
        """The version as the HTTP admin API and MQTT replies name it: ``"v3"``."""
        return f"v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "camera": self.camera,
            "version": self.version,
            "created": self.created,
            "created_by": self.created_by,
            "source": self.source,
            "note": self.note,
            "n_images": self.n_images,
            "size_wh": list(self.size_wh),
            "colour": self.colour,
            "kind": self.kind,
            "params": dict(self.params),
            "current": self.current,
        }

    def __str__(self) -> str:
        w, h = self.size_wh
        return (
            f"{self.recipe}/{self.camera} v{self.version}: {self.n_images} image(s) "
            f"{w}x{h}, {self.kind} model{' (current)' if self.current else ''}"
        )


def check_name(value: str, what: str) -> str:
    """``value`` when it is a valid recipe or camera name; InputError otherwise."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        msg = (
            f"{what}: expected 1-64 characters of letters, digits, '_', '.', '-' "
            f"(not starting with a separator), got {value!r}"
        )
        raise InputError(msg)
    return value


def parse_version(value: int | str | None) -> int | None:
    """``3``, ``"3"``, ``"v3"`` or ``"v0003"`` -> 3; None stays None."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    text = str(value).strip()
    digits = text[1:] if text[:1] in ("v", "V") else text
    if not digits.isdigit():
        msg = f"version: expected a number like 3 or 'v3', got {value!r}"
        raise InputError(msg)
    return int(digits)


def version_dir(base: Path, version: int) -> Path:
    """The directory of ``version`` under a recipe/camera directory."""
    return base / f"v{version:04d}"


def stored_versions(base: Path) -> list[int]:
    """The complete versions under ``base`` (those with a manifest), ascending."""
    if not base.is_dir():
        return []
    out = []
    for entry in base.iterdir():
        m = _VERSION_RE.match(entry.name)
        if m and (entry / "manifest.json").is_file():
            out.append(int(m.group(1)))
    return sorted(out)


def current_version(base: Path) -> int | None:
    """The version ``CURRENT`` names, None when there is none; EdgedError when it is
    not a stored version."""
    try:
        name = (base / "CURRENT").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    m = _VERSION_RE.match(name)
    if not m or not (base / name / "manifest.json").is_file():
        msg = f"reference {base}: CURRENT names {name!r}, which is not a stored version"
        raise EdgedError(msg)
    return int(m.group(1))


def read_manifest(vdir: Path) -> dict[str, Any]:
    """The parsed ``manifest.json`` of a version directory (EdgedError when damaged)."""
    try:
        doc = json.loads((vdir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"reference {vdir}: unreadable manifest.json ({exc})"
        raise EdgedError(msg) from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        msg = f"reference {vdir}: expected a {SCHEMA} manifest, got {str(doc)[:80]!r}"
        raise EdgedError(msg)
    return doc


def read_info(recipe: str, camera: str, vdir: Path, current: int | None) -> ReferenceInfo:
    """The :class:`ReferenceInfo` of a version directory; ``current``: the current version."""
    doc = read_manifest(vdir)
    prep = doc.get("prepared", {})
    return ReferenceInfo(
        recipe=recipe,
        camera=camera,
        version=int(doc["version"]),
        created=str(doc.get("created", "")),
        created_by=str(doc.get("created_by", "")),
        source=str(doc.get("source", "")),
        note=str(doc.get("note", "")),
        n_images=len(doc.get("images", [])),
        size_wh=(int(prep["size_wh"][0]), int(prep["size_wh"][1])),
        colour=bool(prep.get("colour", False)),
        kind=str(prep.get("kind", "single")),
        params=dict(prep.get("params", {})),
        current=int(doc["version"]) == current,
        path=vdir,
    )
