"""The on-disk reference store: good images per recipe and camera, versioned.

The layout is described in :mod:`edged.references._manifest`, the atomic writes
and the lock in :mod:`edged.references._files`: a crash at any point leaves the
previous version current and intact, and mutations take an exclusive ``flock``
on ``<references_dir>/.lock``, so the daemon and ``edged teach`` can share the
store.

:meth:`ReferenceStore.prepared` is what the pipeline calls per frame: it returns
the cached prepared model (a :class:`~edged.checks.prepared.PreparedReference`,
or an :class:`~edged.checks.anomaly.AnomalyModel` for recipes with an ``anomaly``
check; see :mod:`edged.references._params`), reloading only when ``CURRENT``
changed on disk (another process taught or rolled back).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edged.checks.models import ModelParams, PreparedModel
from edged.checks.prepared import check_image
from edged.core.atomic import default_who, fsync_dir, locked
from edged.core.errors import EdgedError, InputError, NotFoundError
from edged.core.frames import Frame
from edged.core.names import NAME_RE
from edged.imaging.imagefiles import read_image_file
from edged.references._files import (
    clean_temporaries,
    current_stamp,
    new_temporary_dir,
    read_png,
    remove_dir,
    set_current,
    write_version,
)
from edged.references._manifest import (
    ReferenceInfo,
    check_name,
    current_version,
    parse_version,
    read_info,
    read_manifest,
    stored_versions,
    version_dir,
)
from edged.references._params import (
    load_model,
    prepare_model,
    prepared_as,
    recipe_params,
)

log = logging.getLogger("edged.references")

MAX_IMAGES = 1000


class ReferenceStore:
    """Versioned references under ``root`` (see the module docstring).

    recipes: optional mapping recipe name -> :class:`~edged.config.RecipeConfig`; when
        given, references are prepared with each recipe's ``difference`` options
        (resolution, behaviours) or trained with its ``anomaly`` options, and a
        stored model prepared differently is prepared again from its stored images
        when loaded.
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
        self._cache: dict[tuple[str, str], tuple[tuple[int, int, int], PreparedModel]] = {}

    # ------------------------------------------------------------------ paths

    def _dir(self, recipe: str, camera: str) -> Path:
        return self.root / check_name(recipe, "recipe") / check_name(camera, "camera")

    def params_for(self, recipe: str) -> ModelParams:
        """The preparation parameters of ``recipe`` (defaults without recipes)."""
        return recipe_params(self._recipes, recipe)

    # ------------------------------------------------------------------ reading

    def versions(self, recipe: str, camera: str) -> list[ReferenceInfo]:
        """Every stored version of ``recipe``/``camera``, oldest first."""
        base = self._dir(recipe, camera)
        current = current_version(base)
        return [
            read_info(recipe, camera, version_dir(base, v), current) for v in stored_versions(base)
        ]

    def current(self, recipe: str, camera: str) -> ReferenceInfo | None:
        """The current version, or None when nothing is stored."""
        base = self._dir(recipe, camera)
        v = current_version(base)
        if v is None:
            return None
        return read_info(recipe, camera, version_dir(base, v), v)

    def list_references(self) -> list[ReferenceInfo]:
        """The current reference of every recipe/camera, sorted by recipe and camera."""
        out: list[ReferenceInfo] = []
        if not self.root.is_dir():
            return out
        for rdir in sorted(p for p in self.root.iterdir() if p.is_dir() and NAME_RE.match(p.name)):
            for cdir in sorted(p for p in rdir.iterdir() if p.is_dir() and NAME_RE.match(p.name)):
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
        for rdir in sorted(p for p in self.root.iterdir() if p.is_dir() and NAME_RE.match(p.name)):
            for cdir in sorted(p for p in rdir.iterdir() if p.is_dir() and NAME_RE.match(p.name)):
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
        doc = read_manifest(vdir)
        return [read_png(vdir / item["file"]) for item in doc["images"]]

    def image(self, recipe: str, camera: str, version: int, index: int = 0) -> np.ndarray:
        """One stored good image of a version (``index`` from 0), e.g. for a thumbnail."""
        vdir = self._resolve(recipe, camera, version)
        items = read_manifest(vdir)["images"]
        if not 0 <= index < len(items):
            msg = f"image index: expected 0..{len(items) - 1}, got {index}"
            raise NotFoundError(msg)
        return read_png(vdir / items[index]["file"])

    def _resolve(self, recipe: str, camera: str, version: int | None) -> Path:
        base = self._dir(recipe, camera)
        if version is None:
            version = current_version(base)
            if version is None:
                msg = (
                    f"no reference stored for recipe {recipe!r} camera {camera!r}: "
                    f"teach one with `edged teach --recipe {recipe} --camera {camera} IMAGE...`"
                )
                raise NotFoundError(msg)
        vdir = version_dir(base, version)
        if not (vdir / "manifest.json").is_file():
            have = stored_versions(base)
            msg = f"reference {recipe}/{camera}: expected a version in {have}, got {version!r}"
            raise NotFoundError(msg)
        return vdir

    def load(
        self,
        recipe: str,
        camera: str,
        *,
        version: int | None = None,
        params: ModelParams | None = None,
    ) -> PreparedModel:
        """The prepared model of a version (default: current).

        When ``params`` (default: the recipe's, see ``recipes``) differ from what the
        version was prepared with, it is prepared again from its stored images.
        Raises NotFoundError when nothing is stored, EdgedError when it is damaged or
        unreadable (never a bare OSError/KeyError: the line reports it as a reason).
        """
        try:
            return self._load(recipe, camera, version=version, params=params)
        except EdgedError:
            raise
        except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
            base = self._dir(recipe, camera)
            msg = f"reference {base}: unreadable ({type(exc).__name__}: {exc})"
            raise EdgedError(msg) from exc

    def _load(
        self,
        recipe: str,
        camera: str,
        *,
        version: int | None,
        params: ModelParams | None,
    ) -> PreparedModel:
        vdir = self._resolve(recipe, camera, version)
        doc = read_manifest(vdir)
        want = params or self.params_for(recipe)
        meta = doc["prepared"]
        if not prepared_as(meta, want):
            log.info(
                "reference %s/%s v%s: preparing again for %s", recipe, camera, doc["version"], want
            )
            roi = read_png(vdir / doc["roi"]) if doc.get("roi") else None
            images = [read_png(vdir / item["file"]) for item in doc["images"]]
            return prepare_model(images, params=want, roi=roi)
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
            return load_model(meta, arrays)
        except InputError as exc:
            msg = f"reference {vdir}: {exc}"
            raise EdgedError(msg) from exc

    def prepared(self, recipe: str, camera: str) -> PreparedModel | None:
        """The current prepared model (cached), or None when none is stored.

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
        params: ModelParams | None = None,
        created_by: str | None = None,
        source: str = "api",
        note: str = "",
        names: Sequence[str] | None = None,
        activate: bool = True,
    ) -> ReferenceInfo:
        """Store ``images`` (good parts, the first is the master) as the new current
        version of ``recipe``/``camera``; returns its info. With ``activate=False``
        the version is stored *pending*: listed, not current, until
        :meth:`activate_pending` (or :meth:`rollback` to it) makes it current.

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
        prepared = prepare_model(list(images), params=params, roi=roi)
        with locked(self.root, self._lock):
            base.mkdir(parents=True, exist_ok=True)
            clean_temporaries(base)
            existing = stored_versions(base)
            version = (existing[-1] if existing else 0) + 1
            tmp = new_temporary_dir(base)
            try:
                write_version(
                    tmp,
                    recipe,
                    camera,
                    version,
                    images,
                    roi,
                    prepared,
                    created_by=created_by or default_who(),
                    source=source,
                    note=note,
                    names=names,
                )
                final = version_dir(base, version)
                os.rename(tmp, final)
                fsync_dir(base)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            if not activate:
                current = current_version(base)
                self._prune(base, current, keep_also=version)
                return read_info(recipe, camera, final, current)
            set_current(base, version)
            self._prune(base, version)
            self._cache[(recipe, camera)] = (current_stamp(base), prepared)
            return read_info(recipe, camera, final, version)

    def activate_pending(self, recipe: str, camera: str, version: int | str) -> str:
        """Make a pending version (stored after the current one, see ``activate=False``)
        current; returns its id (``"v3"``). Older versions: use :meth:`rollback`."""
        wanted = parse_version(version)
        base = self._dir(recipe, camera)
        with locked(self.root, self._lock):
            current = current_version(base)
            have = stored_versions(base)
            pending = [v for v in have if current is None or v > current]
            if wanted not in pending:
                msg = (
                    f"reference {recipe}/{camera}: expected a pending version in "
                    f"{[f'v{v}' for v in pending]}, got {version!r}"
                )
                raise NotFoundError(msg)
            set_current(base, wanted)
            self._cache.pop((recipe, camera), None)
            return f"v{wanted}"

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

    def _prune(self, base: Path, current: int | None, *, keep_also: int | None = None) -> None:
        versions = [v for v in stored_versions(base) if v not in (current, keep_also)]
        for v in versions[: max(0, len(versions) - (self._keep - 1))]:
            remove_dir(base, version_dir(base, v))

    def rollback(self, recipe: str, camera: str, version: int | str | None = None) -> str:
        """Make an older version current (default: the one before the current); returns
        its id (``"v2"``). ``version``: 2, ``"2"`` or ``"v2"``."""
        version = parse_version(version)
        base = self._dir(recipe, camera)
        with locked(self.root, self._lock):
            current = current_version(base)
            have = stored_versions(base)
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
            set_current(base, version)
            self._cache.pop((recipe, camera), None)
            return f"v{version}"

    def delete(self, recipe: str, camera: str, version: int | str | None = None) -> None:
        """Delete one version (not the current one), or everything with ``version=None``."""
        version = parse_version(version)
        base = self._dir(recipe, camera)
        with locked(self.root, self._lock):
            if not base.is_dir():
                msg = f"no reference stored for recipe {recipe!r} camera {camera!r}"
                raise NotFoundError(msg)
            self._cache.pop((recipe, camera), None)
            if version is None:
                remove_dir(base.parent, base)
                with contextlib.suppress(OSError):
                    base.parent.rmdir()  # the recipe folder, when it was its last camera
                return
            current = current_version(base)
            if version == current:
                msg = (
                    f"reference {recipe}/{camera}: v{version} is current; roll back or "
                    "teach another version first, or delete them all"
                )
                raise InputError(msg)
            if version not in stored_versions(base):
                have = stored_versions(base)
                msg = f"reference {recipe}/{camera}: expected a version in {have}, got {version!r}"
                raise NotFoundError(msg)
            remove_dir(base, version_dir(base, version))
