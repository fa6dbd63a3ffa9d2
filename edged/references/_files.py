"""Durable, atomic writes for the reference store, and its cross-process lock.

A version is written into a hidden ``.tmp-<id>`` directory with every file and
directory flushed (fsync), then renamed to ``vNNNN`` in one ``rename``; only then
is ``CURRENT`` replaced (temporary file, fsync, ``os.replace``). A crash at any
point leaves the previous version current and intact; what a crashed writer left
behind is removed by the next writer (:func:`clean_temporaries`). Deleting
renames first, so a crash mid-delete leaves a hidden directory, never half a
version.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edged._version import __version__
from edged.checks.models import PreparedModel
from edged.core.atomic import fsync_dir, utc_now, write_synced
from edged.core.errors import EdgedError
from edged.imaging import png, png_write
from edged.references._manifest import SCHEMA


def encode_png(image: np.ndarray) -> bytes:
    """A reference image as stored: lossless, deflate level 3 (size over speed)."""
    return png_write.encode_png(image, level=3)


def read_png(path: Path) -> np.ndarray:
    data = np.fromfile(path, dtype=np.uint8)
    # The store's own files (8-bit grey/RGB) take the fast decoder; others OpenCV.
    image = png.decode_png(data.tobytes()) if data.size else None
    if image is None and data.size:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        msg = f"reference image {path}: expected a readable PNG, got {data.size} bytes"
        raise EdgedError(msg)
    return np.ascontiguousarray(image)


def write_version(
    vdir: Path,
    recipe: str,
    camera: str,
    version: int,
    images: Sequence[np.ndarray],
    roi: np.ndarray | None,
    prepared: PreparedModel,
    *,
    created_by: str,
    source: str,
    note: str,
    names: Sequence[str] | None,
) -> None:
    """Write every file of a version into the (new, empty) directory ``vdir``, flushed."""
    (vdir / "images").mkdir()
    entries = []
    for i, img in enumerate(images):
        data = encode_png(img)
        rel = f"images/{i:03d}.png"
        write_synced(vdir / rel, data)
        entry = {
            "file": rel,
            "sha256": hashlib.sha256(data).hexdigest(),
            "width": int(img.shape[1]),
            "height": int(img.shape[0]),
            "channels": 1 if img.ndim == 2 else 3,
        }
        if names is not None and i < len(names):
            entry["source_name"] = str(names[i])
        entries.append(entry)
    fsync_dir(vdir / "images")
    roi_rel = None
    if roi is not None:
        roi_rel = "roi.png"
        write_synced(vdir / roi_rel, encode_png(np.where(roi > 0, 255, 0).astype(np.uint8)))
    buf = io.BytesIO()
    savez: Any = np.savez  # numpy's stub types **arrays as its keyword options
    savez(buf, **prepared.arrays())
    blob = buf.getvalue()
    write_synced(vdir / "prepared.npz", blob)
    meta = prepared.meta()
    meta.update({"file": "prepared.npz", "sha256": hashlib.sha256(blob).hexdigest()})
    manifest = {
        "schema": SCHEMA,
        "recipe": recipe,
        "camera": camera,
        "version": version,
        "created": utc_now(),
        "created_by": created_by,
        "source": source,
        "note": note,
        "edged_version": __version__,
        "images": entries,
        "roi": roi_rel,
        "prepared": meta,
    }
    write_synced(vdir / "manifest.json", json.dumps(manifest, indent=2).encode("utf-8"))
    fsync_dir(vdir)


def new_temporary_dir(base: Path) -> Path:
    """A new hidden directory under ``base`` to write a version into."""
    tmp = base / f".tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    return tmp


def set_current(base: Path, version: int) -> None:
    """Point ``CURRENT`` at ``version`` atomically (and durably)."""
    tmp = base / f".CURRENT-{uuid.uuid4().hex[:8]}"
    write_synced(tmp, f"v{version:04d}\n".encode())
    os.replace(tmp, base / "CURRENT")
    fsync_dir(base)


def current_stamp(base: Path) -> tuple[int, int, int]:
    """What identifies the present ``CURRENT`` file: inode, mtime (ns), size."""
    st = os.stat(base / "CURRENT")
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def clean_temporaries(base: Path) -> None:
    """Remove what crashed writers left behind (call with the lock held: none is live)."""
    for entry in base.iterdir():
        if entry.name.startswith((".tmp-", ".CURRENT-", ".deleted-")):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def remove_dir(base: Path, path: Path) -> None:
    """Delete ``path`` (under ``base``): rename it hidden first, then remove it."""
    hidden = base / f".deleted-{uuid.uuid4().hex[:8]}"
    os.rename(path, hidden)
    shutil.rmtree(hidden, ignore_errors=True)
