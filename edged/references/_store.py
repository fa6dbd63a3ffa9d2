"""The reference store: good images per recipe and camera, versioned, on disk.

Layout under ``references_dir``::

    <recipe>/<camera>/
        CURRENT              the current version's directory name ("v0003")
        v0001/ v0002/ v0003/ one directory per version, never changed once written:
            manifest.json    who/when/what: schema, version, created, created_by,
                             source, note, params, images (file, sha256, size), roi
            images/000.png   the good images as taught (lossless)
            roi.png          the ROI mask (255 = inspected), when one was given
            prepared.npz     the trained model and the precomputed registration data
        .tmp-<id>/           a version being written (ignored; removed later)

Writes are atomic: a version is written into ``.tmp-<id>``, flushed (fsync), renamed
to ``vNNNN`` (one ``rename``), and only then ``CURRENT`` is replaced (write a
temporary file, fsync, ``os.replace``). A crash at any point leaves the previous
version current and intact. Mutations take an exclusive ``flock`` on
``<references_dir>/.lock``, so the daemon and ``edged teach`` can share the store.

:meth:`ReferenceStore.prepared` is what the pipeline calls per frame: it returns
the cached :class:`~edged.checks.prepared.PreparedReference`, reloading only when
``CURRENT`` changed on disk (another process taught or rolled back).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import hashlib
import io
import json
import logging
import os
import re
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edged._version import __version__
from edged.checks.prepared import PreparedReference, ReferenceParams, check_image, prepare_reference
from edged.core.errors import EdgedError, InputError, NotFoundError
from edged.core.frames import Frame
from edged.imaging.imagefiles import read_image_file

log = logging.getLogger("edged.references")

SCHEMA = "edged.reference.v1"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSION_RE = re.compile(r"^v(\d{4,})$")
MAX_IMAGES = 1000


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


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
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


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _default_who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in a container
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:  # pragma: no cover - only for invalid arrays, which check_image refuses
        msg = f"PNG encoding failed for an array of shape {image.shape}"
        raise EdgedError(msg)
    return bytes(buf.tobytes())


def _read_png(path: Path) -> np.ndarray:
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        msg = f"reference image {path}: expected a readable PNG, got {data.size} bytes"
        raise EdgedError(msg)
    return np.ascontiguousarray(image)


class ReferenceStore:
    """Versioned references under ``root`` (see the module docstring).

    recipes: optional mapping recipe name -> :class:`~edged.config.RecipeConfig`; when
        given, references are prepared with each recipe's ``difference`` options
        (resolution, behaviours), and a stored reference prepared differently is
        prepared again from its stored images when loaded.
    keep_versions: how many versions to keep per recipe/camera (older ones are pruned
        after a teach; the current one is always kept).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        recipes: Mapping[str, Any] | None = None,
        keep_versions: int = 10,
    ) -> None:
        if keep_versions < 1:
            msg = f"keep_versions: expected >= 1, got {keep_versions!r}"
            raise InputError(msg)
        self.root = Path(root)
        self._recipes = dict(recipes) if recipes is not None else None
        self._keep = keep_versions
        self._lock = threading.RLock()
        self._cache: dict[tuple[str, str], tuple[tuple[int, int, int], PreparedReference]] = {}

    # ------------------------------------------------------------------ paths

    def _dir(self, recipe: str, camera: str) -> Path:
        return self.root / _check_name(recipe, "recipe") / _check_name(camera, "camera")

    @staticmethod
    def _version_dir(base: Path, version: int) -> Path:
        return base / f"v{version:04d}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive across threads (RLock) and processes (flock on root/.lock)."""
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(self.root / ".lock", "a+b") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def params_for(self, recipe: str) -> ReferenceParams:
        """The preparation parameters of ``recipe`` (defaults without recipes)."""
        if self._recipes is None or recipe not in self._recipes:
            return ReferenceParams()
        from edged.checks._difference_spec import reference_params

        return reference_params(self._recipes[recipe])

    # ------------------------------------------------------------------ reading

    def _versions(self, base: Path) -> list[int]:
        if not base.is_dir():
            return []
        out = []
        for entry in base.iterdir():
            m = _VERSION_RE.match(entry.name)
            if m and (entry / "manifest.json").is_file():
                out.append(int(m.group(1)))
        return sorted(out)

    def _current_version(self, base: Path) -> int | None:
        try:
            name = (base / "CURRENT").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        m = _VERSION_RE.match(name)
        if not m or not (base / name / "manifest.json").is_file():
            msg = f"reference {base}: CURRENT names {name!r}, which is not a stored version"
            raise EdgedError(msg)
        return int(m.group(1))

    def _manifest(self, vdir: Path) -> dict[str, Any]:
        try:
            doc = json.loads((vdir / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            msg = f"reference {vdir}: unreadable manifest.json ({exc})"
            raise EdgedError(msg) from exc
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            msg = f"reference {vdir}: expected a {SCHEMA} manifest, got {str(doc)[:80]!r}"
            raise EdgedError(msg)
        return doc

    def _info(self, recipe: str, camera: str, vdir: Path, current: int | None) -> ReferenceInfo:
        doc = self._manifest(vdir)
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

    def versions(self, recipe: str, camera: str) -> list[ReferenceInfo]:
        """Every stored version of ``recipe``/``camera``, oldest first."""
        base = self._dir(recipe, camera)
        current = self._current_version(base)
        return [
            self._info(recipe, camera, self._version_dir(base, v), current)
            for v in self._versions(base)
        ]

    def current(self, recipe: str, camera: str) -> ReferenceInfo | None:
        """The current version, or None when nothing is stored."""
        base = self._dir(recipe, camera)
        v = self._current_version(base)
        if v is None:
            return None
        return self._info(recipe, camera, self._version_dir(base, v), v)

    def list_references(self) -> list[ReferenceInfo]:
        """The current reference of every recipe/camera, sorted by recipe and camera."""
        out: list[ReferenceInfo] = []
        if not self.root.is_dir():
            return out
        for rdir in sorted(p for p in self.root.iterdir() if p.is_dir() and _NAME_RE.match(p.name)):
            for cdir in sorted(p for p in rdir.iterdir() if p.is_dir() and _NAME_RE.match(p.name)):
                info = self.current(rdir.name, cdir.name)
                if info is not None:
                    out.append(info)
        return out

    def entries(self) -> list[dict[str, Any]]:
        """Every recipe/camera with its versions (the HTTP admin API's listing)::

        {"recipe", "camera", "active": "v3" | None,
         "versions": [{"version": "v1", "created", "images", "created_by", "source",
                       "note", "kind", "size_wh"}, ...]}
        """
        out: list[dict[str, Any]] = []
        if not self.root.is_dir():
            return out
        for rdir in sorted(p for p in self.root.iterdir() if p.is_dir() and _NAME_RE.match(p.name)):
            for cdir in sorted(p for p in rdir.iterdir() if p.is_dir() and _NAME_RE.match(p.name)):
                infos = self.versions(rdir.name, cdir.name)
                if not infos:
                    continue
                active = next((i.version_id for i in infos if i.current), None)
                versions = [
                    {
                        "version": i.version_id,
                        "created": i.created,
                        "images": i.n_images,
                        "created_by": i.created_by,
                        "source": i.source,
                        "note": i.note,
                        "kind": i.kind,
                        "size_wh": list(i.size_wh),
                    }
                    for i in infos
                ]
                out.append(
                    {
                        "recipe": rdir.name,
                        "camera": cdir.name,
                        "active": active,
                        "versions": versions,
                    }
                )
        return out

    def images(self, recipe: str, camera: str, version: int | None = None) -> list[np.ndarray]:
        """The stored good images of a version (default: the current one)."""
        vdir = self._resolve(recipe, camera, version)
        doc = self._manifest(vdir)
        return [_read_png(vdir / item["file"]) for item in doc["images"]]

    def image(self, recipe: str, camera: str, version: int, index: int = 0) -> np.ndarray:
        """One stored good image of a version (``index`` from 0), e.g. for a thumbnail."""
        vdir = self._resolve(recipe, camera, version)
        items = self._manifest(vdir)["images"]
        if not 0 <= index < len(items):
            msg = f"image index: expected 0..{len(items) - 1}, got {index}"
            raise NotFoundError(msg)
        return _read_png(vdir / items[index]["file"])

    def _resolve(self, recipe: str, camera: str, version: int | None) -> Path:
        base = self._dir(recipe, camera)
        if version is None:
            version = self._current_version(base)
            if version is None:
                msg = (
                    f"no reference stored for recipe {recipe!r} camera {camera!r}: "
                    f"teach one with `edged teach --recipe {recipe} --camera {camera} IMAGE...`"
                )
                raise NotFoundError(msg)
        vdir = self._version_dir(base, version)
        if not (vdir / "manifest.json").is_file():
            have = self._versions(base)
            msg = f"reference {recipe}/{camera}: expected a version in {have}, got {version!r}"
            raise NotFoundError(msg)
        return vdir

    def load(
        self,
        recipe: str,
        camera: str,
        *,
        version: int | None = None,
        params: ReferenceParams | None = None,
    ) -> PreparedReference:
        """The prepared reference of a version (default: current).

        When ``params`` (default: the recipe's, see ``recipes``) differ from what the
        version was prepared with, it is prepared again from its stored images.
        Raises NotFoundError when nothing is stored, EdgedError when it is damaged.
        """
        vdir = self._resolve(recipe, camera, version)
        doc = self._manifest(vdir)
        want = params or self.params_for(recipe)
        meta = doc["prepared"]
        stored = ReferenceParams.from_dict(meta["params"])
        if stored.resolution != want.resolution or stored.behaviors != want.behaviors:
            log.info(
                "reference %s/%s v%s: preparing again for %s", recipe, camera, doc["version"], want
            )
            roi = _read_png(vdir / doc["roi"]) if doc.get("roi") else None
            images = [_read_png(vdir / item["file"]) for item in doc["images"]]
            return prepare_reference(images, params=want, roi=roi)
        path = vdir / meta["file"]
        if hashlib.sha256(path.read_bytes()).hexdigest() != meta["sha256"]:
            msg = f"reference {vdir}: {meta['file']} does not match its manifest checksum"
            raise EdgedError(msg)
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            msg = f"reference {vdir}: unreadable {meta['file']} ({exc})"
            raise EdgedError(msg) from exc
        try:
            return PreparedReference.from_arrays(meta, arrays)
        except InputError as exc:
            msg = f"reference {vdir}: {exc}"
            raise EdgedError(msg) from exc

    def prepared(self, recipe: str, camera: str) -> PreparedReference | None:
        """The current prepared reference (cached), or None when none is stored.

        Cheap per frame: one ``stat`` of ``CURRENT``; reloads when it changed.
        """
        base = self._dir(recipe, camera)
        try:
            st = os.stat(base / "CURRENT")
        except FileNotFoundError:
            with self._lock:
                self._cache.pop((recipe, camera), None)
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        key = (recipe, camera)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == stamp:
                return hit[1]
            ref = self.load(recipe, camera)
            self._cache[key] = (stamp, ref)
            return ref

    # ------------------------------------------------------------------ writing

    def teach(self, recipe: str, camera: str, images: Sequence[np.ndarray], **kwargs: Any) -> str:
        """Store ``images`` as the new current version; returns its id (``"v3"``).

        The shape the HTTP admin API, MQTT ``teach`` and auto-teach use; keyword
        arguments as :meth:`add_version`, which returns the full :class:`ReferenceInfo`.
        """
        return self.add_version(recipe, camera, images, **kwargs).version_id

    def add_version(
        self,
        recipe: str,
        camera: str,
        images: Sequence[np.ndarray],
        *,
        roi: np.ndarray | None = None,
        params: ReferenceParams | None = None,
        created_by: str | None = None,
        source: str = "api",
        note: str = "",
        names: Sequence[str] | None = None,
    ) -> ReferenceInfo:
        """Store ``images`` (good parts, the first is the master) as the new current
        version of ``recipe``/``camera``; returns its info.

        images: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR, all the same size.
        roi: optional ``(H, W)`` uint8 mask, non-zero = inspected.
        Raises InputError when the images are unusable (the reason names the image).
        """
        base = self._dir(recipe, camera)
        if not 1 <= len(images) <= MAX_IMAGES:
            msg = f"teach: expected 1..{MAX_IMAGES} images, got {len(images)}"
            raise InputError(msg)
        for i, img in enumerate(images):
            check_image(img, f"teach image {i}")
        params = params or self.params_for(recipe)
        prepared = prepare_reference(list(images), params=params, roi=roi)
        with self._locked():
            base.mkdir(parents=True, exist_ok=True)
            self._clean_temporaries(base)
            existing = self._versions(base)
            version = (existing[-1] if existing else 0) + 1
            tmp = base / f".tmp-{uuid.uuid4().hex[:12]}"
            tmp.mkdir()
            try:
                self._write_version(
                    tmp,
                    recipe,
                    camera,
                    version,
                    images,
                    roi,
                    prepared,
                    created_by=created_by or _default_who(),
                    source=source,
                    note=note,
                    names=names,
                )
                final = self._version_dir(base, version)
                os.rename(tmp, final)
                _fsync_dir(base)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self._set_current(base, version)
            self._prune(base, version)
            self._cache[(recipe, camera)] = (self._stamp(base), prepared)
            return self._info(recipe, camera, final, version)

    def teach_files(
        self, recipe: str, camera: str, paths: Sequence[str | os.PathLike[str]], **kwargs: Any
    ) -> ReferenceInfo:
        """:meth:`teach` from image files (PNG, JPEG, BMP, TIFF, ...)."""
        files = [Path(p) for p in paths]
        images = [read_image_file(p) for p in files]
        kwargs.setdefault("source", "files")
        kwargs.setdefault("names", [p.name for p in files])
        return self.add_version(recipe, camera, images, **kwargs)

    def teach_frames(
        self, recipe: str, camera: str, frames: Sequence[Frame], **kwargs: Any
    ) -> ReferenceInfo:
        """:meth:`teach` from camera frames (decoded with :func:`edged.imaging.pixfmt.decode`;
        pass ``demosaic=`` / ``bayer_pattern=`` for raw Bayer cameras)."""
        from edged.imaging.pixfmt import decode

        demosaic = kwargs.pop("demosaic", "bilinear")
        bayer = kwargs.pop("bayer_pattern", None)
        images = [decode(f, demosaic=demosaic, bayer_pattern=bayer) for f in frames]
        kwargs.setdefault("source", "camera")
        kwargs.setdefault("names", [f"{f.camera}-seq{f.seq}" for f in frames])
        return self.add_version(recipe, camera, images, **kwargs)

    def _write_version(
        self,
        vdir: Path,
        recipe: str,
        camera: str,
        version: int,
        images: Sequence[np.ndarray],
        roi: np.ndarray | None,
        prepared: PreparedReference,
        *,
        created_by: str,
        source: str,
        note: str,
        names: Sequence[str] | None,
    ) -> None:
        (vdir / "images").mkdir()
        entries = []
        for i, img in enumerate(images):
            data = _png(img)
            rel = f"images/{i:03d}.png"
            _write_file(vdir / rel, data)
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
        _fsync_dir(vdir / "images")
        roi_rel = None
        if roi is not None:
            roi_rel = "roi.png"
            _write_file(vdir / roi_rel, _png(np.where(roi > 0, 255, 0).astype(np.uint8)))
        buf = io.BytesIO()
        savez: Any = np.savez  # numpy's stub types **arrays as its keyword options
        savez(buf, **prepared.arrays())
        blob = buf.getvalue()
        _write_file(vdir / "prepared.npz", blob)
        meta = prepared.meta()
        meta.update({"file": "prepared.npz", "sha256": hashlib.sha256(blob).hexdigest()})
        manifest = {
            "schema": SCHEMA,
            "recipe": recipe,
            "camera": camera,
            "version": version,
            "created": _now(),
            "created_by": created_by,
            "source": source,
            "note": note,
            "edged_version": __version__,
            "images": entries,
            "roi": roi_rel,
            "prepared": meta,
        }
        _write_file(vdir / "manifest.json", json.dumps(manifest, indent=2).encode("utf-8"))
        _fsync_dir(vdir)

    def _set_current(self, base: Path, version: int) -> None:
        tmp = base / f".CURRENT-{uuid.uuid4().hex[:8]}"
        _write_file(tmp, f"v{version:04d}\n".encode())
        os.replace(tmp, base / "CURRENT")
        _fsync_dir(base)

    @staticmethod
    def _stamp(base: Path) -> tuple[int, int, int]:
        st = os.stat(base / "CURRENT")
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _clean_temporaries(self, base: Path) -> None:
        """Remove what crashed writers left behind (we hold the lock: none is live)."""
        for entry in base.iterdir():
            if entry.name.startswith((".tmp-", ".CURRENT-", ".deleted-")):
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    def _prune(self, base: Path, current: int) -> None:
        versions = [v for v in self._versions(base) if v != current]
        for v in versions[: max(0, len(versions) - (self._keep - 1))]:
            self._remove_dir(base, self._version_dir(base, v))

    def _remove_dir(self, base: Path, path: Path) -> None:
        # Rename first: a crash mid-delete leaves a hidden directory, never half a version.
        hidden = base / f".deleted-{uuid.uuid4().hex[:8]}"
        os.rename(path, hidden)
        shutil.rmtree(hidden, ignore_errors=True)

    def rollback(self, recipe: str, camera: str, version: int | str | None = None) -> str:
        """Make an older version current (default: the one before the current); returns
        its id (``"v2"``). ``version``: 2, ``"2"`` or ``"v2"``."""
        version = parse_version(version)
        base = self._dir(recipe, camera)
        with self._locked():
            current = self._current_version(base)
            have = self._versions(base)
            if version is None:
                older = [v for v in have if current is None or v < current]
                if not older:
                    msg = (
                        f"reference {recipe}/{camera}: no version before "
                        f"v{current} to roll back to (stored: {have})"
                    )
                    raise NotFoundError(msg)
                version = older[-1]
            if version not in have:
                msg = f"reference {recipe}/{camera}: expected a version in {have}, got {version!r}"
                raise NotFoundError(msg)
            self._set_current(base, version)
            self._cache.pop((recipe, camera), None)
            return f"v{version}"

    def delete(self, recipe: str, camera: str, version: int | str | None = None) -> None:
        """Delete one version (not the current one), or everything with ``version=None``."""
        version = parse_version(version)
        base = self._dir(recipe, camera)
        with self._locked():
            if not base.is_dir():
                msg = f"no reference stored for recipe {recipe!r} camera {camera!r}"
                raise NotFoundError(msg)
            self._cache.pop((recipe, camera), None)
            if version is None:
                self._remove_dir(base.parent, base)
                with contextlib.suppress(OSError):
                    base.parent.rmdir()  # the recipe folder, when it was its last camera
                return
            current = self._current_version(base)
            if version == current:
                msg = (
                    f"reference {recipe}/{camera}: v{version} is current; roll back or "
                    "teach another version first, or delete them all"
                )
                raise InputError(msg)
            if version not in self._versions(base):
                have = self._versions(base)
                msg = f"reference {recipe}/{camera}: expected a version in {have}, got {version!r}"
                raise NotFoundError(msg)
            self._remove_dir(base, self._version_dir(base, version))


class InMemoryReferences:
    """A reference provider without a disk (``edged analyze --reference``, tests): the
    same good images for every recipe and camera, prepared once per recipe's
    parameters (see ``ReferenceStore``'s ``recipes``)."""

    def __init__(
        self,
        images: Sequence[np.ndarray],
        *,
        roi: np.ndarray | None = None,
        recipes: Mapping[str, Any] | None = None,
    ) -> None:
        if not images:
            msg = "references: expected at least one good image, got none"
            raise InputError(msg)
        self._images = list(images)
        self._roi = roi
        self._recipes = dict(recipes) if recipes is not None else None
        self._lock = threading.Lock()
        self._by_params: dict[ReferenceParams, PreparedReference] = {}

    @classmethod
    def from_images(
        cls,
        images: Sequence[np.ndarray],
        *,
        roi: np.ndarray | None = None,
        recipes: Mapping[str, Any] | None = None,
    ) -> InMemoryReferences:
        return cls(images, roi=roi, recipes=recipes)

    def prepared(self, recipe: str, camera: str) -> PreparedReference | None:
        params = ReferenceParams()
        if self._recipes is not None and recipe in self._recipes:
            from edged.checks._difference_spec import reference_params

            params = reference_params(self._recipes[recipe])
        with self._lock:
            ref = self._by_params.get(params)
            if ref is None:
                ref = prepare_reference(self._images, params=params, roi=self._roi)
                self._by_params[params] = ref
            return ref
