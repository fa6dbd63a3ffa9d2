"""The model repository on disk: networks, recognition specs and versions.

Layout under ``models_dir``::

    networks/<id>/ specs/<id>/ versions/<id>/
        CURRENT          the current revision's directory name ("r0002")
        r0001/ r0002/    one directory per revision, never changed once written:
            manifest.json  who/when, the document, each file's sha256 and size
            model.onnx     (networks) the graph; other files uploaded with it
        .tmp-<id>/       a revision being written (ignored; removed later)
    NEXT_ID              the next free id (ids are never reused)
    GENERATION           changes on every write: caches compare it

Writes are atomic (temporary directory, fsync, rename, then ``CURRENT`` replaced)
and take an exclusive ``flock`` on ``.lock``. A network is loaded by onnxruntime
when it is uploaded and a version runs once on a test image when it is created,
so a bad model is refused at upload, never at the first frame. A version's
:class:`~edged.models.engine.Recognizer` is built once and shared; it is replaced
(atomically, in the cache) when the version, its spec or its network change.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import ValidationError

from edged.core.atomic import (
    default_who,
    fsync_dir,
    locked,
    replace_synced,
    utc_now,
    write_synced,
)
from edged.core.errors import EdgedError, InputError, NotFoundError
from edged.core.names import NAME_RE
from edged.models.engine import (
    ModelError,
    NetworkRunner,
    Recognizer,
    SessionOptions,
    check_network,
)
from edged.models.public import PUBLIC_MODELS, PublicModel
from edged.models.vocabulary import NetworkConfig, PostProcessing, SpecOutputs

T = TypeVar("T")
Kind = Literal["networks", "specs", "versions"]
KINDS: tuple[Kind, ...] = ("networks", "specs", "versions")
SCHEMA = "edged.model.v1"
MODEL_FILE = "model.onnx"
_REV_RE = re.compile(r"^r(\d{4,})$")


class ConflictError(EdgedError):
    """The change would break something that depends on it (e.g. a network in use)."""

    http_status = 409


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _validate(model: Any, doc: Any, what: str) -> Any:
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        msg = f"{what}: {_describe(exc)}"
        raise InputError(msg) from exc


@dataclass(frozen=True, slots=True)
class Record:
    """One object's current revision: its document and manifest."""

    kind: Kind
    id: int
    revision: int
    doc: Mapping[str, Any]
    created: str
    created_by: str
    sha256: str

    def to_api(self) -> dict[str, Any]:
        """The document with its id, as the Deepomatic API shows it (plus edged fields)."""
        return {
            "id": self.id,
            **self.doc,
            "update_date": self.created,
            "revision": self.revision,
            "created_by": self.created_by,
            "sha256": self.sha256,
        }


class ModelRepository:
    """Networks, specs and versions under ``root`` (see the module docstring)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        options: SessionOptions | None = None,
        keep_revisions: int = 5,
        public: Mapping[str, PublicModel] | None = None,
    ) -> None:
        if keep_revisions < 1:
            msg = f"keep_revisions: expected >= 1, got {keep_revisions!r}"
            raise InputError(msg)
        self.root = Path(root)
        self._options = options or SessionOptions()
        self._keep = keep_revisions
        self._public = dict(PUBLIC_MODELS if public is None else public)
        self._lock = threading.RLock()
        self._cache: dict[object, tuple[object, Any]] = {}

    # ------------------------------------------------------------------ low level

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return locked(self.root, self._lock)

    def _dir(self, kind: Kind, obj_id: int) -> Path:
        return self.root / kind / str(obj_id)

    @staticmethod
    def _revisions(base: Path) -> list[int]:
        if not base.is_dir():
            return []
        return sorted(int(m.group(1)) for p in base.iterdir() if (m := _REV_RE.match(p.name)))

    @staticmethod
    def _current(base: Path) -> int | None:
        try:
            text = (base / "CURRENT").read_text(encoding="utf-8").strip()
        except OSError:
            return None
        m = _REV_RE.match(text)
        return int(m.group(1)) if m else None

    def _next_id(self) -> int:
        path = self.root / "NEXT_ID"
        try:
            value = int(path.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            value = 1
        replace_synced(path, f"{value + 1}\n".encode())
        return value

    def _bump(self) -> None:
        replace_synced(self.root / "GENERATION", uuid.uuid4().hex.encode())

    def generation(self) -> str:
        """Changes whenever anything in the repository changes."""
        try:
            return (self.root / "GENERATION").read_text(encoding="utf-8")
        except OSError:
            return ""

    def _write(
        self,
        kind: Kind,
        obj_id: int,
        doc: Mapping[str, Any],
        files: Mapping[str, bytes],
        who: str | None,
    ) -> Record:
        base = self._dir(kind, obj_id)
        base.mkdir(parents=True, exist_ok=True)
        revs = self._revisions(base)
        rev = (revs[-1] + 1) if revs else 1
        tmp = base / f".tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode())
        listed = []
        for name, data in sorted(files.items()):
            write_synced(tmp / name, data)
            sha = hashlib.sha256(data).hexdigest()
            digest.update(name.encode() + sha.encode())
            listed.append({"file": name, "sha256": sha, "size": len(data)})
        manifest = {
            "schema": SCHEMA,
            "kind": kind,
            "id": obj_id,
            "revision": rev,
            "created": utc_now(),
            "created_by": who or default_who(),
            "sha256": digest.hexdigest(),
            "files": listed,
            "doc": dict(doc),
        }
        write_synced(tmp / "manifest.json", json.dumps(manifest, indent=2).encode())
        fsync_dir(tmp)
        os.rename(tmp, base / f"r{rev:04d}")
        fsync_dir(base)
        replace_synced(base / "CURRENT", f"r{rev:04d}\n".encode())
        self._prune(base, rev)
        self._bump()
        return self._record(kind, obj_id, manifest)

    def _prune(self, base: Path, current: int) -> None:
        for p in base.iterdir():
            if p.name.startswith(".tmp-"):
                shutil.rmtree(p, ignore_errors=True)
        old = [r for r in self._revisions(base) if r != current]
        for r in old[: max(0, len(old) - (self._keep - 1))]:
            shutil.rmtree(base / f"r{r:04d}", ignore_errors=True)

    @staticmethod
    def _record(kind: Kind, obj_id: int, manifest: Mapping[str, Any]) -> Record:
        return Record(
            kind,
            obj_id,
            int(manifest["revision"]),
            manifest["doc"],
            str(manifest["created"]),
            str(manifest["created_by"]),
            str(manifest["sha256"]),
        )

    def _manifest(self, kind: Kind, obj_id: int, rev: int | None = None) -> dict[str, Any]:
        base = self._dir(kind, obj_id)
        rev = self._current(base) if rev is None else rev
        if rev is None:
            msg = f"{kind[:-1]} {obj_id}: expected an existing id, got none with that id"
            raise NotFoundError(msg)
        try:
            doc = json.loads((base / f"r{rev:04d}" / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            msg = f"{kind[:-1]} {obj_id}: revision {rev} is missing or unreadable"
            raise NotFoundError(msg) from exc
        return dict(doc)

    def _file(self, kind: Kind, obj_id: int, rev: int, name: str) -> bytes:
        return (self._dir(kind, obj_id) / f"r{rev:04d}" / name).read_bytes()

    # ------------------------------------------------------------------ reading

    def get(self, kind: Kind, obj_id: int) -> Record:
        return self._record(kind, obj_id, self._manifest(kind, obj_id))

    def records(self, kind: Kind) -> list[Record]:
        base = self.root / kind
        if not base.is_dir():
            return []
        ids = sorted(int(p.name) for p in base.iterdir() if p.name.isdigit())
        out = []
        for obj_id in ids:
            with contextlib.suppress(NotFoundError):
                out.append(self.get(kind, obj_id))
        return out

    def revisions(self, kind: Kind, obj_id: int) -> list[Record]:
        base = self._dir(kind, obj_id)
        return [
            self._record(kind, obj_id, self._manifest(kind, obj_id, r))
            for r in self._revisions(base)
        ]

    # ------------------------------------------------------------------ networks

    def _network_doc(self, doc: Mapping[str, Any], files: Mapping[str, bytes]) -> dict[str, Any]:
        name = doc.get("name")
        if not isinstance(name, str) or not name.strip():
            msg = f"network name: expected a non-empty string, got {name!r}"
            raise InputError(msg)
        framework = str(doc.get("framework") or "onnx").lower()
        if framework != "onnx":
            msg = f"network framework: expected 'onnx', got {framework!r}"
            raise InputError(msg)
        pre = _validate(NetworkConfig, doc.get("preprocessing"), "network preprocessing")
        for fname in files:
            if not NAME_RE.match(fname):
                msg = f"network file name: expected letters, digits, '_', '.', '-', got {fname!r}"
                raise InputError(msg)
        if MODEL_FILE not in files:
            msg = f"network: expected the ONNX graph as a file, got files {sorted(files)}"
            raise InputError(msg)
        mean_file = pre.image.mean_file
        if mean_file and mean_file not in files:
            msg = f"network mean_file: expected an uploaded file {mean_file!r}, got {sorted(files)}"
            raise InputError(msg)
        mean = _mean_values(files[mean_file]) if mean_file else None
        _probe_network(files[MODEL_FILE], pre, mean, self._options)
        return {
            "name": name.strip(),
            "description": str(doc.get("description") or ""),
            "metadata": dict(doc.get("metadata") or {}),
            "framework": "onnx",
            "preprocessing": pre.model_dump(mode="json", exclude_defaults=False),
        }

    def create_network(
        self, doc: Mapping[str, Any], files: Mapping[str, bytes], *, who: str | None = None
    ) -> Record:
        """Validate (the graph loads, names and sizes fit) and store a new network."""
        clean = self._network_doc(doc, files)
        with self._locked():
            return self._write("networks", self._next_id(), clean, files, who)

    def replace_network(
        self,
        obj_id: int,
        doc: Mapping[str, Any],
        files: Mapping[str, bytes],
        *,
        who: str | None = None,
    ) -> Record:
        """A new revision of a network; versions using it must still load."""
        self.get("networks", obj_id)
        clean = self._network_doc(doc, files)
        with self._locked():
            record = self._write("networks", obj_id, clean, files, who)
            try:
                for v in self.records("versions"):
                    if v.doc["network_id"] == obj_id:
                        self._build(v)
            except ModelError:
                self._rollback_locked("networks", obj_id, record.revision - 1, who)
                raise
            return record

    def update_network(
        self, obj_id: int, changes: Mapping[str, Any], *, who: str | None = None
    ) -> Record:
        """Change a network's name, description or metadata (graph and preprocessing stay)."""
        unknown = sorted(set(changes) - {"name", "description", "metadata"})
        if unknown:
            msg = (
                f"network update: expected name, description, metadata, got {unknown} "
                "(upload a new revision to change the graph or its preprocessing)"
            )
            raise InputError(msg)
        with self._locked():
            manifest = self._manifest("networks", obj_id)
            rev = int(manifest["revision"])
            files = {
                f["file"]: self._file("networks", obj_id, rev, f["file"]) for f in manifest["files"]
            }
            doc = {**manifest["doc"], **changes}
            name = doc.get("name")
            if not isinstance(name, str) or not name.strip():
                msg = f"network name: expected a non-empty string, got {name!r}"
                raise InputError(msg)
            return self._write("networks", obj_id, doc, files, who)

    # ------------------------------------------------------------------ specs

    def _spec_doc(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        name = doc.get("name")
        if not isinstance(name, str) or not name.strip():
            msg = f"spec name: expected a non-empty string, got {name!r}"
            raise InputError(msg)
        outputs = _validate(SpecOutputs, {"outputs": doc.get("outputs")}, "spec outputs")
        current = doc.get("current_version_id")
        if current is not None and not isinstance(current, int):
            msg = f"spec current_version_id: expected a version id or null, got {current!r}"
            raise InputError(msg)
        return {
            "name": name.strip(),
            "description": str(doc.get("description") or ""),
            "metadata": dict(doc.get("metadata") or {}),
            "outputs": outputs.model_dump(mode="json")["outputs"],
            "current_version_id": current,
        }

    def create_spec(self, doc: Mapping[str, Any], *, who: str | None = None) -> Record:
        clean = self._spec_doc({**doc, "current_version_id": None})
        with self._locked():
            return self._write("specs", self._next_id(), clean, {}, who)

    def update_spec(
        self, obj_id: int, changes: Mapping[str, Any], *, who: str | None = None
    ) -> Record:
        """Change a spec's name, description, metadata or current version (outputs are
        fixed once versions exist)."""
        with self._locked():
            old = self.get("specs", obj_id)
            unknown = sorted(
                set(changes) - {"name", "description", "metadata", "outputs", "current_version_id"}
            )
            if unknown:
                msg = (
                    "spec update: expected name, description, metadata, current_version_id, "
                    f"got {unknown}"
                )
                raise InputError(msg)
            doc = {**old.doc, **changes}
            if (
                "outputs" in changes
                and changes["outputs"] != old.doc["outputs"]
                and self._spec_versions(obj_id)
            ):
                msg = f"spec {obj_id}: outputs cannot change while versions implement it"
                raise ConflictError(msg)
            current = doc.get("current_version_id")
            if current is not None and current not in self._spec_versions(obj_id):
                msg = (
                    f"spec current_version_id: expected a version of spec {obj_id} "
                    f"({self._spec_versions(obj_id)}), got {current!r}"
                )
                raise InputError(msg)
            return self._write("specs", obj_id, self._spec_doc(doc), {}, who)

    def _spec_versions(self, spec_id: int) -> list[int]:
        return [v.id for v in self.records("versions") if v.doc["spec_id"] == spec_id]

    # ------------------------------------------------------------------ versions

    def create_version(self, doc: Mapping[str, Any], *, who: str | None = None) -> Record:
        """A version implements a spec with a network; it must load and run."""
        spec_id, network_id = _id_field(doc, "spec_id"), _id_field(doc, "network_id")
        posts = doc.get("post_processings")
        if not isinstance(posts, list) or len(posts) != 1:
            msg = f"version post_processings: expected a list of one post-processing, got {posts!r}"
            raise InputError(msg)
        post = _validate(PostProcessing, posts[0], "version post_processings[0]")
        clean = {
            "spec_id": spec_id,
            "network_id": network_id,
            "post_processings": [post.model_dump(mode="json", exclude_none=True)],
        }
        with self._locked():
            spec = self.get("specs", spec_id)
            network = self.get("networks", network_id)
            self._load(spec, network, post)
            record = self._write("versions", self._next_id(), clean, {}, who)
            self._write("specs", spec.id, {**spec.doc, "current_version_id": record.id}, {}, who)
            return record

    # ------------------------------------------------------------------ changes

    def _rollback_locked(
        self, kind: Kind, obj_id: int, revision: int | None, who: str | None
    ) -> Record:
        revs = self._revisions(self._dir(kind, obj_id))
        current = self._current(self._dir(kind, obj_id))
        if revision is None:
            older = [r for r in revs if current is not None and r < current]
            if not older:
                msg = f"{kind[:-1]} {obj_id}: expected an older revision to roll back to, got none"
                raise NotFoundError(msg)
            revision = older[-1]
        if revision not in revs:
            msg = f"{kind[:-1]} {obj_id}: expected a revision from {revs}, got {revision}"
            raise NotFoundError(msg)
        replace_synced(self._dir(kind, obj_id) / "CURRENT", f"r{revision:04d}\n".encode())
        self._bump()
        return self.get(kind, obj_id)

    def rollback(
        self, kind: Kind, obj_id: int, revision: int | None = None, *, who: str | None = None
    ) -> Record:
        """Make an older revision current again (the previous one by default)."""
        with self._locked():
            return self._rollback_locked(kind, obj_id, revision, who)

    def delete(self, kind: Kind, obj_id: int) -> None:
        """Delete an object; a network or spec that versions use cannot be deleted."""
        with self._locked():
            record = self.get(kind, obj_id)
            if kind in ("networks", "specs"):
                key = "network_id" if kind == "networks" else "spec_id"
                users = [v.id for v in self.records("versions") if v.doc[key] == obj_id]
                if users:
                    msg = f"{kind[:-1]} {obj_id}: used by versions {users}; delete them first"
                    raise ConflictError(msg)
            if kind == "versions":
                spec = self.get("specs", int(record.doc["spec_id"]))
                if spec.doc.get("current_version_id") == obj_id:
                    rest = [v for v in self._spec_versions(spec.id) if v != obj_id]
                    self._write(
                        "specs",
                        spec.id,
                        {**spec.doc, "current_version_id": rest[-1] if rest else None},
                        {},
                        None,
                    )
            base = self._dir(kind, obj_id)
            hidden = base.with_name(f".deleted-{obj_id}-{uuid.uuid4().hex[:8]}")
            os.rename(base, hidden)
            fsync_dir(base.parent)
            shutil.rmtree(hidden, ignore_errors=True)
            self._bump()

    # ------------------------------------------------------------------ loading

    def _load(self, spec: Record, network: Record, post: PostProcessing) -> Recognizer:
        pre = NetworkConfig.model_validate(network.doc["preprocessing"])
        mean_file = pre.image.mean_file
        mean = (
            _mean_values(self._file("networks", network.id, network.revision, mean_file))
            if mean_file
            else None
        )
        return Recognizer(
            self._file("networks", network.id, network.revision, MODEL_FILE),
            network=pre,
            spec=SpecOutputs.model_validate({"outputs": spec.doc["outputs"]}),
            post=post,
            mean=mean,
            options=self._options,
        )

    def network_runner(self, network_id: int) -> NetworkRunner:
        """The network alone, loaded (raw outputs; rebuilt after any change)."""
        network = self.get("networks", network_id)

        def build() -> NetworkRunner:
            pre = NetworkConfig.model_validate(network.doc["preprocessing"])
            mean_file = pre.image.mean_file
            rev = network.revision
            mean = (
                _mean_values(self._file("networks", network_id, rev, mean_file))
                if mean_file
                else None
            )
            model = self._file("networks", network_id, rev, MODEL_FILE)
            return NetworkRunner(model, pre, mean=mean, options=self._options)

        return self._cached(("network", network_id), self.generation(), build)

    def _build(self, version: Record) -> Recognizer:
        spec = self.get("specs", int(version.doc["spec_id"]))
        network = self.get("networks", int(version.doc["network_id"]))
        post = PostProcessing.model_validate(version.doc["post_processings"][0])
        return self._load(spec, network, post)

    def _cached(self, key: object, stamp: object, build: Callable[[], T]) -> T:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == stamp:
                return hit[1]
        loaded = build()
        with self._lock:
            self._cache[key] = (stamp, loaded)
        return loaded

    def recognizer(self, version_id: int) -> Recognizer:
        """The loaded version (built once; rebuilt after any change in the repository)."""
        version = self.get("versions", version_id)
        return self._cached(
            ("version", version_id), self.generation(), lambda: self._build(version)
        )

    def spec_recognizer(self, spec_id: int) -> tuple[int, Recognizer]:
        """The spec's current version, loaded: ``(version_id, recognizer)``."""
        spec = self.get("specs", spec_id)
        current = spec.doc.get("current_version_id")
        if current is None:
            msg = f"spec {spec_id}: expected a current version, got none (create a version first)"
            raise NotFoundError(msg)
        return int(current), self.recognizer(int(current))

    def resolve(self, ref: int | str) -> Recognizer:
        """A loaded model by reference: a version id, or a public model's name."""
        if isinstance(ref, int) or ref.isdigit():
            return self.recognizer(int(ref))
        return self.public_recognizer(ref)

    # ------------------------------------------------------------------ public models

    def public_models(self) -> list[PublicModel]:
        """The shipped models whose package is installed."""
        return [m for m in self._public.values() if m.available()]

    def public(self, name: str) -> PublicModel:
        model = self._public.get(name)
        if model is None or not model.available():
            names = sorted(m.name for m in self.public_models())
            msg = f"public model: expected one of {names}, got {name!r}"
            raise NotFoundError(msg)
        return model

    def public_recognizer(self, name: str) -> Recognizer:
        model = self.public(name)
        return self._cached(("public", name), None, lambda: model.load(self._options))


def _id_field(doc: Mapping[str, Any], key: str) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        msg = f"version {key}: expected an integer id, got {value!r}"
        raise InputError(msg)
    return value


def _mean_values(data: bytes) -> np.ndarray:
    """Per-channel means from a ``.npy`` mean file (HWC or C; averaged over H and W)."""
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError) as exc:
        msg = f"mean_file: expected a NumPy .npy array, got {len(data)} bytes ({exc})"
        raise InputError(msg) from exc
    arr = np.asarray(arr, np.float32)
    if arr.ndim == 0:
        return arr.reshape(1)
    return arr.reshape(-1, arr.shape[-1]).mean(axis=0)


def _probe_network(
    model: bytes, pre: NetworkConfig, mean: np.ndarray | None, options: SessionOptions
) -> None:
    """Refuse a network whose graph does not load or does not take its preprocessing."""
    check_network(model, pre, options)
    if mean is not None and mean.size not in (1, pre.image.channels):
        msg = f"mean_file: expected 1 or {pre.image.channels} channel means, got {mean.size}"
        raise ModelError(msg)
