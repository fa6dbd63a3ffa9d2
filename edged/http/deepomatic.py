"""The Deepomatic API v0.7 under ``/v0.7/``, for the unchanged ``deepomatic-api`` client.

Resources (every path also answers without its trailing slash):

- ``/recognition/specs/`` list, create; ``/recognition/specs/{id}/`` retrieve, update
  (PATCH/PUT), delete; ``/recognition/specs/{id}/versions``;
- ``/recognition/versions/`` list, create; ``/recognition/versions/{id}/`` retrieve, delete;
- ``/recognition/public/`` and ``/recognition/public/{name}/``: the models edged ships;
- ``/networks/`` list, upload (multipart, the graph as a ``*.onnx`` file part);
  ``/networks/{id}/`` retrieve, update, replace (PUT with a new graph), delete;
- ``POST .../{id}/inference`` on a spec (its current version), a version or a public
  model: the image as a multipart file, base64 or a URL from ``http.url_fetch_hosts``,
  with ``show_discarded``, ``max_predictions`` and an input ``bbox``; answers
  ``{"task_id": N}`` at once;
- ``/tasks/{id}/`` and ``/tasks/?task_ids=1&task_ids=2``: ``{id, status, error, data}``.

edged adds ``GET .../{id}/revisions`` and ``POST .../{id}/rollback`` (body
``{"revision": N}`` or empty for the previous one) on networks, specs and versions.
Lists are ``{count, next, previous, results}`` (``offset``, ``limit``). The API key
comes as ``X-API-KEY`` (or edged's other forms; the app's auth middleware checks
it). Deterministic failures (bad image, unknown id, a model that does not fit) are
4xx ``{"error": ...}``; only transient ones (too many pending tasks) are 5xx, which
the client retries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edged.core.errors import InputError, NotFoundError
from edged.http._drf import unflatten
from edged.http._errors import UnavailableError
from edged.http._families import ApiFamily, HttpError, JsonBody, register_family
from edged.http._form_values import parse_bool, parse_int
from edged.http._input import decode_image_bytes, image_from_text, read_form, run_pixels
from edged.http._keys import RUNTIME
from edged.http._tasks import TaskStore
from edged.models import BBox, Recognizer
from edged.models.engine import NetworkRunner
from edged.models.repository import Kind, ModelRepository, Record

PREFIX = "/v0.7"


def _error_body(request: web.Request, error: HttpError) -> JsonBody:
    return {"error": error.message}


DEEPOMATIC_FAMILY = ApiFamily("Deepomatic", _error_body, prefixes=(PREFIX + "/",))
"""Errors under /v0.7/ are ``{"error": reason}`` (the status is the HTTP status)."""
TASKS = web.AppKey("edged.deepomatic.tasks", TaskStore)
MAX_LIMIT = 1000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ------------------------------------------------------------------ helpers


def _repo(request: web.Request) -> ModelRepository:
    models = request.app[RUNTIME].models
    if models is None:
        msg = "model repository: expected models_dir to be configured, got none"
        raise UnavailableError(msg)
    return models


def _id(request: web.Request, what: str = "id") -> int:
    raw = request.match_info[what]
    if not raw.isdigit():
        msg = f"{what}: expected a numeric id, got {raw!r}"
        raise NotFoundError(msg)
    return int(raw)


def _int(value: Any, name: str, *, default: int, lo: int, hi: int) -> int:
    return default if value is None else parse_int(value, name, lo, hi)


def _bool(value: Any, name: str, *, default: bool) -> bool:
    return default if value is None else parse_bool(value, name)


def _page(request: web.Request, items: Sequence[Mapping[str, Any]]) -> web.Response:
    offset = _int(request.query.get("offset"), "offset", default=0, lo=0, hi=10**9)
    limit = _int(request.query.get("limit"), "limit", default=100, lo=1, hi=MAX_LIMIT)
    url = request.url
    nxt = str(url.update_query(offset=offset + limit, limit=limit))
    prev = str(url.update_query(offset=max(0, offset - limit), limit=limit))
    return web.json_response(
        {
            "count": len(items),
            "next": nxt if offset + limit < len(items) else None,
            "previous": prev if offset > 0 else None,
            "results": list(items[offset : offset + limit]),
        }
    )


async def _document(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The body as a nested document (JSON, or DRF-flattened multipart) and its files."""
    form = await read_form(request)
    return unflatten(_fields(form.fields)), dict(form.files)


def _fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k != "api_key"}


async def _blocking(request: web.Request, fn: Callable[..., Any], *args: Any) -> Any:
    return await run_pixels(request, fn, *args)


def _kind_path(kind: Kind) -> str:
    paths = {"networks": "/networks", "specs": "/recognition/specs"}
    return paths.get(kind, "/recognition/versions")


# ------------------------------------------------------------------ networks


def _graph_files(files: Mapping[str, bytes]) -> dict[str, bytes]:
    graphs = [name for name in files if name.lower().endswith(".onnx")]
    if len(graphs) != 1:
        msg = (
            "network: expected exactly one ONNX graph as a file part named '*.onnx' "
            f"(files={{'model.onnx': path}} with the client), got files {sorted(files)}"
        )
        raise InputError(msg)
    out = {k: v for k, v in files.items() if k != graphs[0]}
    out["model.onnx"] = files[graphs[0]]
    return out


async def create_network(request: web.Request) -> web.Response:
    doc, files = await _document(request)
    record = await _blocking(request, _repo(request).create_network, doc, _graph_files(files))
    return web.json_response(record.to_api(), status=201)


async def replace_network(request: web.Request) -> web.Response:
    doc, files = await _document(request)
    repo = _repo(request)
    if not files:  # PUT without a graph: a plain update of the editable fields
        record = await _blocking(request, repo.update_network, _id(request), doc)
    else:
        record = await _blocking(
            request, repo.replace_network, _id(request), doc, _graph_files(files)
        )
    return web.json_response(record.to_api())


async def update_network(request: web.Request) -> web.Response:
    doc, _ = await _document(request)
    record = await _blocking(request, _repo(request).update_network, _id(request), doc)
    return web.json_response(record.to_api())


# ------------------------------------------------------------------ specs and versions


async def create_spec(request: web.Request) -> web.Response:
    doc, _ = await _document(request)
    record = await _blocking(request, _repo(request).create_spec, doc)
    return web.json_response(record.to_api(), status=201)


async def update_spec(request: web.Request) -> web.Response:
    doc, _ = await _document(request)
    record = await _blocking(request, _repo(request).update_spec, _id(request), doc)
    return web.json_response(record.to_api())


async def spec_versions(request: web.Request) -> web.Response:
    repo = _repo(request)
    spec_id = _id(request)
    repo.get("specs", spec_id)
    items = [v.to_api() for v in repo.records("versions") if v.doc["spec_id"] == spec_id]
    return _page(request, items)


async def create_version(request: web.Request) -> web.Response:
    doc, _ = await _document(request)
    for key in ("spec_id", "network_id"):
        if isinstance(doc.get(key), str) and doc[key].isdigit():
            doc[key] = int(doc[key])
    record = await _blocking(request, _repo(request).create_version, doc)
    return web.json_response(record.to_api(), status=201)


def _lister(kind: Kind) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return _page(request, [r.to_api() for r in _repo(request).records(kind)])

    return handler


def _getter(kind: Kind) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(_repo(request).get(kind, _id(request)).to_api())

    return handler


def _deleter(kind: Kind) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await _blocking(request, _repo(request).delete, kind, _id(request))
        return web.Response(status=204)

    return handler


def _revisions(kind: Kind) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        records: list[Record] = _repo(request).revisions(kind, _id(request))
        if not records:
            _repo(request).get(kind, _id(request))  # 404 for an unknown id
        return _page(request, [r.to_api() for r in records])

    return handler


def _rollback(kind: Kind) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        doc, _ = await _document(request)
        revision = doc.get("revision")
        rev = None if revision is None else _int(revision, "revision", default=0, lo=1, hi=10**9)
        record = await _blocking(request, _repo(request).rollback, kind, _id(request), rev)
        return web.json_response(record.to_api())

    return handler


# ------------------------------------------------------------------ public models


async def public_list(request: web.Request) -> web.Response:
    return _page(request, [m.to_api() for m in _repo(request).public_models()])


async def public_get(request: web.Request) -> web.Response:
    return web.json_response(_repo(request).public(request.match_info["name"]).to_api())


# ------------------------------------------------------------------ inference


class _Box(BaseModel):
    model_config = ConfigDict(extra="forbid")

    xmin: float = Field(ge=0.0, le=1.0)
    ymin: float = Field(ge=0.0, le=1.0)
    xmax: float = Field(ge=0.0, le=1.0)
    ymax: float = Field(ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _order(self) -> _Box:
        if self.xmin >= self.xmax or self.ymin >= self.ymax:
            msg = "expected xmin < xmax and ymin < ymax"
            raise ValueError(msg)
        return self


async def _inference_input(
    request: web.Request,
) -> tuple[np.ndarray, BBox | None, bool, int]:
    form = await read_form(request)
    doc = unflatten({**_fields(form.fields), **form.files})
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        got = f"{len(inputs)} inputs" if isinstance(inputs, list) else repr(inputs)[:60]
        msg = f"inputs: expected a list of one {{'image': {{'source': ...}}}}, got {got}"
        raise InputError(msg)
    image = inputs[0].get("image")
    if not isinstance(image, dict) or "source" not in image:
        msg = "inputs[0].image.source: expected an image file, base64 text or a URL, got none"
        raise InputError(msg)
    source = image["source"]
    name = "inputs[0].image.source"
    data = source if isinstance(source, bytes) else await image_from_text(request, source, name)
    pixels = await decode_image_bytes(request, data, name)
    bbox = None
    if image.get("bbox") is not None:
        try:
            box = _Box.model_validate(image["bbox"])
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
            msg = f"inputs[0].image.bbox: expected {{xmin, ymin, xmax, ymax}} in [0, 1]: {reason}"
            raise InputError(msg) from exc
        bbox = BBox(box.xmin, box.ymin, box.xmax, box.ymax)
    show = _bool(doc.get("show_discarded"), "show_discarded", default=False)
    cap = _int(doc.get("max_predictions"), "max_predictions", default=100, lo=1, hi=100_000)
    return pixels, bbox, show, cap


def _inference(resolve: Callable[[web.Request, ModelRepository], Recognizer]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        repo = _repo(request)
        image, bbox, show, cap = await _inference_input(request)
        recognizer: Recognizer = await _blocking(request, resolve, request, repo)
        pool = request.app[RUNTIME].pool

        async def work() -> Mapping[str, Any]:
            result = await pool.run(recognizer.recognize, image, bbox=bbox, max_predictions=cap)
            return result.to_dict(show_discarded=show)

        task = request.app[TASKS].submit(work)
        return web.json_response({"task_id": task.id})

    return handler


async def network_inference(request: web.Request) -> web.Response:
    """Raw output tensors of a network (``output_tensors``: which; default all)."""
    repo = _repo(request)
    image, _, _, _ = await _inference_input(request)
    form = await read_form(request)
    doc = unflatten(_fields(form.fields))
    wanted = doc.get("output_tensors")
    if wanted is not None and (
        not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted)
    ):
        msg = f"output_tensors: expected a list of tensor names, got {wanted!r}"
        raise InputError(msg)
    runner: NetworkRunner = await _blocking(request, repo.network_runner, _id(request))
    if unknown := [w for w in wanted or [] if w not in runner.output_names]:
        msg = f"output_tensors: expected names from {list(runner.output_names)}, got {unknown}"
        raise InputError(msg)
    pool = request.app[RUNTIME].pool

    async def work() -> Mapping[str, Any]:
        outs = await pool.run(runner.run, image, outputs=wanted)
        tensors = [
            {"name": name, "shape": list(arr.shape), "data": arr.reshape(-1).tolist()}
            for name, arr in outs.items()
        ]
        return {"tensors": tensors}

    task = request.app[TASKS].submit(work)
    return web.json_response({"task_id": task.id})


def _spec_model(request: web.Request, repo: ModelRepository) -> Recognizer:
    return repo.spec_recognizer(_id(request))[1]


def _version_model(request: web.Request, repo: ModelRepository) -> Recognizer:
    return repo.recognizer(_id(request))


def _public_model(request: web.Request, repo: ModelRepository) -> Recognizer:
    return repo.public_recognizer(request.match_info["name"])


# ------------------------------------------------------------------ tasks


async def get_task(request: web.Request) -> web.Response:
    return web.json_response(request.app[TASKS].get(_id(request)).to_api())


async def list_tasks(request: web.Request) -> web.Response:
    raw = [part for value in request.query.getall("task_ids", []) for part in value.split(",")]
    if not raw:
        msg = "task_ids: expected one or more task ids (task_ids=1&task_ids=2), got none"
        raise InputError(msg)
    ids = []
    for part in raw:
        if not part.strip().isdigit():
            msg = f"task_ids: expected numeric task ids, got {part!r}"
            raise InputError(msg)
        ids.append(int(part))
    store = request.app[TASKS]
    return _page(request, [store.get(i).to_api() for i in ids])


# ------------------------------------------------------------------ routes


Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


def _routes() -> list[tuple[Method, str, Handler, str]]:
    """``(method, path under /v0.7, handler, summary)`` of every route."""
    out: list[tuple[Method, str, Handler, str]] = [
        ("GET", "/networks/", _lister("networks"), "List networks"),
        ("POST", "/networks/", create_network, "Upload a network (ONNX graph + preprocessing)"),
        ("GET", "/networks/{id}/", _getter("networks"), "Retrieve a network"),
        ("PATCH", "/networks/{id}/", update_network, "Rename or describe a network"),
        ("PUT", "/networks/{id}/", replace_network, "A new revision of a network"),
        ("DELETE", "/networks/{id}/", _deleter("networks"), "Delete an unused network"),
        (
            "POST",
            "/networks/{id}/inference/",
            network_inference,
            "Raw output tensors of a network (answers a task id)",
        ),
        ("GET", "/recognition/specs/", _lister("specs"), "List recognition specs"),
        ("POST", "/recognition/specs/", create_spec, "Create a recognition spec"),
        ("GET", "/recognition/specs/{id}/", _getter("specs"), "Retrieve a spec"),
        ("PATCH", "/recognition/specs/{id}/", update_spec, "Update a spec"),
        ("PUT", "/recognition/specs/{id}/", update_spec, "Update a spec"),
        ("DELETE", "/recognition/specs/{id}/", _deleter("specs"), "Delete a spec"),
        ("GET", "/recognition/specs/{id}/versions/", spec_versions, "A spec's versions"),
        (
            "POST",
            "/recognition/specs/{id}/inference/",
            _inference(_spec_model),
            "Inference with the spec's current version (answers a task id)",
        ),
        ("GET", "/recognition/versions/", _lister("versions"), "List versions"),
        ("POST", "/recognition/versions/", create_version, "Create a version"),
        ("GET", "/recognition/versions/{id}/", _getter("versions"), "Retrieve a version"),
        ("DELETE", "/recognition/versions/{id}/", _deleter("versions"), "Delete a version"),
        (
            "POST",
            "/recognition/versions/{id}/inference/",
            _inference(_version_model),
            "Inference with a version (answers a task id)",
        ),
        ("GET", "/recognition/public/", public_list, "The models edged ships"),
        ("GET", "/recognition/public/{name}/", public_get, "A shipped model's spec"),
        (
            "POST",
            "/recognition/public/{name}/inference/",
            _inference(_public_model),
            "Inference with a shipped model (answers a task id)",
        ),
        ("GET", "/tasks/", list_tasks, "Tasks by id (task_ids=1&task_ids=2)"),
        ("GET", "/tasks/{id}/", get_task, "A task: status, error, data"),
    ]
    kinds: tuple[Kind, ...] = ("networks", "specs", "versions")
    for kind in kinds:
        base = f"{_kind_path(kind)}/{{id}}"
        out.append(("GET", f"{base}/revisions/", _revisions(kind), f"Revisions of {kind}"))
        out.append(("POST", f"{base}/rollback/", _rollback(kind), f"Roll back {kind}"))
    return out


def route_summaries() -> list[tuple[str, str, str]]:
    """``(method, path, summary)`` of every route as served (both slash forms), for OpenAPI."""
    out: list[tuple[str, str, str]] = []
    for method, path, _, summary in _routes():
        out.append((method, PREFIX + path, summary))
        out.append((method, PREFIX + path.rstrip("/"), summary))
    return out


async def _close_tasks(app: web.Application) -> None:
    await app[TASKS].close()


def setup(app: web.Application) -> None:
    """Add the Deepomatic v0.7 routes and the task store to ``app``."""
    settings = app[RUNTIME].settings.recognition
    app[TASKS] = TaskStore(
        max_tasks=settings.max_tasks,
        max_pending=settings.max_pending_tasks,
        ttl_s=settings.task_ttl_s,
    )
    app.on_cleanup.append(_close_tasks)
    register_family(app, DEEPOMATIC_FAMILY)
    for method, path, handler, _ in _routes():
        app.router.add_route(method, PREFIX + path, handler)
        app.router.add_route(method, PREFIX + path.rstrip("/"), handler)
