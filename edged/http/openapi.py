"""The OpenAPI 3.1 document of every edged HTTP endpoint, served at ``/api/v1/openapi.json``.

Hand-written as data: PEKAT-compatible analyze, LTU-style image services,
PixLab-style ``imgdiff``, the admin API, health and metrics. The Result schema
comes from the pydantic model, so it cannot drift from what edged sends.
"""

from __future__ import annotations

import copy
import functools

from aiohttp import web

from edged._version import __version__
from edged.http import ltu
from edged.http._context import json_response
from edged.http._families import ADMIN_FAMILY, register_family
from edged.http._openapi_schemas import schemas
from edged.http._openapi_station import station_paths
from edged.http._openapi_util import JSON, Doc, errors, json_content, op, param, ref

# --------------------------------------------------------------------- PEKAT


_ANALYZE_PARAMS: list[Doc] = [
    param(
        "response_type",
        "query",
        {
            "type": "string",
            "enum": ["context", "image", "annotated_image", "heatmap"],
            "default": "context",
        },
        "context: the context as JSON; image: the inspected image (PNG); annotated_image: "
        "the image with defect boxes and heat map; heatmap: the heat map alone (PNG)",
    ),
    param(
        "context_in_body",
        "query",
        {"type": "string"},
        "Flag (bare, or 1/true/0/false). Image responses then carry PNG + context JSON in "
        "the body, with header ImageLen giving the PNG's length",
        allowEmptyValue=True,
    ),
    param("data", "query", {"type": "string"}, "Any text, copied into the context as data"),
    param("recipe", "query", {"type": "string"}, "Recipe to run (default: http.default_recipe)"),
]
_SIZE_PARAMS: list[Doc] = [
    param("width", "query", {"type": "integer", "minimum": 1}, "Image width, px", required=True),
    param("height", "query", {"type": "integer", "minimum": 1}, "Image height, px", required=True),
    param(
        "bayer",
        "query",
        {"type": "string"},
        "Flag: the pixels are a Bayer RG 8 mosaic (or name the PFNC pattern RG/GR/GB/BG)",
        allowEmptyValue=True,
    ),
]


def _analyze_responses() -> Doc:
    ok = {
        "description": "The context (JSON), or a PNG with the context in a header or the body",
        "headers": {
            "ContextBase64utf": {
                "description": "image responses without context_in_body: base64 of the "
                "context JSON (UTF-8)",
                "schema": {"type": "string"},
            },
            "context": {
                "description": "image responses without context_in_body: the context JSON "
                "as one ASCII line (the short PEKAT document's header name)",
                "schema": {"type": "string"},
            },
            "ImageLen": {
                "description": "image responses with context_in_body: bytes of PNG before "
                "the context JSON",
                "schema": {"type": "integer"},
            },
            "X-Edged-Heatmap": {
                "description": "heat map source: check (a check made it) or regions "
                "(painted from the defect regions' boxes and scores)",
                "schema": {"type": "string", "enum": ["check", "regions"]},
            },
        },
        "content": {
            JSON: {"schema": ref("PekatContext")},
            "image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}},
            "application/octet-stream": {
                "schema": {"type": "string", "description": "PNG followed by context JSON"}
            },
        },
    }
    return {"200": ok, **errors(400, 401, 404, 408, 413, 429, 503)}


def _pekat_paths() -> Doc:
    binary = {"type": "string", "contentMediaType": "application/octet-stream"}
    return {
        "/analyze_image": {
            "post": op(
                "Analyze a JPEG or PNG image (PEKAT-compatible)",
                {**_analyze_responses(), **errors(415)},
                tags=["PEKAT"],
                parameters=_ANALYZE_PARAMS,
                requestBody={
                    "required": True,
                    "content": {"application/octet-stream": {"schema": binary}},
                },
            )
        },
        "/analyze_raw_image": {
            "post": op(
                "Analyze raw pixels: H·W·3 bytes BGR, H·W grey, or H·W Bayer with bayer",
                _analyze_responses(),
                tags=["PEKAT"],
                parameters=_SIZE_PARAMS + _ANALYZE_PARAMS,
                requestBody={
                    "required": True,
                    "content": {"application/octet-stream": {"schema": binary}},
                },
            )
        },
        "/analyze_image_shared_memory": {
            "post": op(
                "Analyze raw pixels in a POSIX shared-memory block (clients on this host)",
                {**_analyze_responses(), **errors(403)},
                tags=["PEKAT"],
                parameters=[
                    *_SIZE_PARAMS,
                    param("name", "query", {"type": "string"}, "Block name", required=True),
                    *_ANALYZE_PARAMS,
                ],
            )
        },
        "/ping": {
            "get": op(
                "200 while edged serves",
                {"200": {"description": "pong", "content": {"text/plain": {"schema": {}}}}},
                secured=False,
                tags=["PEKAT"],
            )
        },
        "/version": {
            "get": op(
                "PEKAT API level with edged's version as local label, e.g. 3.18.0+edged.0.1.0",
                {
                    "200": {
                        "description": "version text",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                secured=False,
                tags=["PEKAT"],
            )
        },
    }


# --------------------------------------------------------------------- LTU / PixLab

_LTU_RECOGNITION = {
    "classification": "Labels from a recognition model (recognition.classification or model=)",
    "objectDetection": "Objects with normalised bounding polygons from a detection model "
    "(recognition.object_detection or model=)",
}
_LTU_PAIR = {
    "differences": ("image1", "image2", "Regions where the query (image2) differs from image1"),
    "alignmentMatrix": ("image1", "image2", "3×3 matrices mapping image1 onto image2 and back"),
    "distance": ("refImage", "queryImage", "Similarity score: 0 clone, < 1 match, >= 2 unrelated"),
}


def _ltu_body(*fields: str) -> Doc:
    props_multi: Doc = {f: {"type": "string", "contentMediaType": "image/*"} for f in fields}
    props_form: Doc = {f: {"type": "string", "contentEncoding": "base64"} for f in fields}
    return {
        "required": True,
        "description": "Images as multipart file parts or base64 form fields; options as "
        "further fields or query parameters",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": props_multi,
                    "required": list(fields),
                    "additionalProperties": True,
                }
            },
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": props_form,
                    "required": list(fields),
                    "additionalProperties": True,
                }
            },
        },
    }


def _enveloped(responses: Doc) -> Doc:
    """Error responses whose body is the LTU envelope instead of the plain Error."""
    out = copy.deepcopy(responses)
    for resp in out.values():
        resp["content"][JSON]["schema"] = ref("LtuEnvelope")
    return out


def _ltu_paths() -> Doc:
    paths: Doc = {}
    # Every LTU answer, errors included, is the envelope (result null on error).
    envelope = {
        "200": json_content(ref("LtuEnvelope"), "Result envelope"),
        **_enveloped(errors(400, 401, 408, 413, 429, 503)),
    }
    # The document accepts GET too: the same fields as query parameters.
    for name, service in ltu.services().items():  # one per check with an LTU service
        paths[f"{ltu.PREFIX}/{name}"] = {
            "post": op(service.summary, envelope, tags=["LTU"], requestBody=_ltu_body("image")),
            "get": op(service.summary + " (fields as query parameters)", envelope, tags=["LTU"]),
        }
    for name, summary in _LTU_RECOGNITION.items():  # edged.http.ltu_recognition
        paths[f"{ltu.PREFIX}/{name}"] = {
            "post": op(summary, envelope, tags=["LTU"], requestBody=_ltu_body("image")),
            "get": op(summary + " (fields as query parameters)", envelope, tags=["LTU"]),
        }
    for name, (a, b, summary) in _LTU_PAIR.items():
        responses = {**envelope, **_enveloped(errors(422))}
        paths[f"/v2/services/image/{name}"] = {
            "post": op(summary, responses, tags=["LTU"], requestBody=_ltu_body(a, b)),
            "get": op(summary + " (fields as query parameters)", responses, tags=["LTU"]),
        }
    paths["/v2/services/image/imagesDifferences"] = paths["/v2/services/image/differences"]
    pixlab_get = op(
        "PixLab's documented call: GET with src and target URLs and key (or the "
        "WWW-Authenticate header); the answer's link serves the difference image",
        {
            "200": {
                "description": "{status, diff, id, link} as JSON, or the PNG with blob=true",
                "content": {
                    JSON: {"schema": {"type": "object"}},
                    "image/png": {"schema": {"type": "string"}},
                },
            },
            **errors(400, 401, 413),
        },
        tags=["PixLab"],
        parameters=[
            param("src", "query", {"type": "string", "format": "uri"}, "Source image URL"),
            param("target", "query", {"type": "string", "format": "uri"}, "Target image URL"),
            param("key", "query", {"type": "string"}, "The API key"),
            param("blob", "query", {"type": "boolean"}, "Return the PNG"),
        ],
    )
    paths["/imgdiff/results/{name}"] = {
        "get": op(
            "A difference image of the last imgdiff calls (the answer's link)",
            {
                "200": {
                    "description": "The PNG",
                    "content": {"image/png": {"schema": {"type": "string"}}},
                },
                **errors(404),
            },
            secured=False,
            tags=["PixLab"],
            parameters=[param("name", "path", {"type": "string"}, "{id}.png", required=True)],
        )
    }
    paths["/imgdiff"] = {
        "get": pixlab_get,
        "post": op(
            "Mean square error of two same-size images (PixLab-style); blob=true returns PNG",
            {
                "200": {
                    "description": "MSE as JSON, or the difference image with blob=true",
                    "content": {
                        JSON: {"schema": {"type": "object"}},
                        "image/png": {"schema": {"type": "string"}},
                    },
                },
                **errors(400, 401, 413),
            },
            tags=["PixLab"],
            parameters=[param("blob", "query", {"type": "boolean"}, "Return the PNG")],
            requestBody={
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "src": {"type": "string", "contentMediaType": "image/*"},
                                "target": {"type": "string", "contentMediaType": "image/*"},
                            },
                            "required": ["src", "target"],
                        }
                    }
                },
            },
        ),
    }
    return paths


def _deepomatic_paths() -> Doc:
    from edged.http.deepomatic import route_summaries

    paths: Doc = {}
    for method, path, summary in route_summaries():
        params = [
            param(
                name, "path", {"type": "integer" if name == "id" else "string"}, name, required=True
            )
            for name in ("id", "name")
            if f"{{{name}}}" in path
        ]
        if path.endswith(("/tasks/", "/tasks")):
            params.append(
                param("task_ids", "query", {"type": "integer"}, "task ids", required=True)
            )
        responses = {
            "200": json_content({"type": "object"}, "The resource, a list or a task id"),
            **errors(400, 401, 404, 503),
        }
        extra: Doc = {"parameters": params} if params else {}
        paths.setdefault(path, {})[method.lower()] = op(
            summary, responses, tags=["Deepomatic"], **extra
        )
    return paths


# --------------------------------------------------------------------- operations


def _ops_paths() -> Doc:
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "/healthz": {
            "get": op(
                "Liveness: the process serves HTTP",
                {"200": json_content({"type": "object"}, "ok")},
                secured=False,
                tags=["Operations"],
            )
        },
        "/readyz": {
            "get": op(
                "Readiness of every component",
                {
                    "200": json_content(ref("Readiness"), "all components ready"),
                    "503": json_content(ref("Readiness"), "some component not ready"),
                },
                secured=False,
                tags=["Operations"],
            )
        },
        "/metrics": {
            "get": op(
                "Prometheus metrics (text exposition format)",
                {"200": {"description": "metrics", "content": text}},
                secured=False,
                tags=["Operations"],
            )
        },
    }


# --------------------------------------------------------------------- admin


def _admin_paths() -> Doc:
    cam = param("camera", "path", {"type": "string"}, "Camera id", required=True)
    rec = param("recipe", "path", {"type": "string"}, "Recipe name", required=True)
    ver = param("version", "path", {"type": "string"}, "Reference version", required=True)
    obj = {"type": "object"}
    p = "/api/v1"
    refs_503 = errors(400, 401, 404, 413, 503)
    return {
        f"{p}/openapi.json": {
            "get": op(
                "This document",
                {"200": json_content(obj, "OpenAPI 3.1")},
                secured=False,
                tags=["Admin"],
            )
        },
        f"{p}/cameras": {
            "get": op(
                "Cameras with their state, recipe and last verdict",
                {
                    "200": json_content(
                        {
                            "type": "object",
                            "properties": {"cameras": {"type": "array", "items": ref("Camera")}},
                        },
                        "cameras",
                    ),
                    **errors(401),
                },
                tags=["Admin"],
            )
        },
        f"{p}/cameras/{{camera}}": {
            "get": op(
                "One camera",
                {"200": json_content(ref("Camera"), "camera"), **errors(401, 404)},
                tags=["Admin"],
                parameters=[cam],
            )
        },
        f"{p}/cameras/{{camera}}/frame.jpg": {
            "get": op(
                "The camera's last frame as JPEG",
                {
                    "200": {"description": "JPEG", "content": {"image/jpeg": {"schema": {}}}},
                    **errors(400, 401, 404),
                },
                tags=["Admin"],
                parameters=[
                    cam,
                    param(
                        "quality",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": 100},
                        "JPEG quality (default 90)",
                    ),
                ],
            )
        },
        f"{p}/cameras/{{camera}}/trigger": {
            "post": op(
                "Fire a software trigger",
                {"202": json_content(obj, "triggered"), **errors(400, 401, 404)},
                tags=["Admin"],
                parameters=[cam],
            )
        },
        f"{p}/cameras/{{camera}}/recipe": {
            "get": op(
                "The camera's active recipe",
                {"200": json_content(obj, "recipe"), **errors(401, 404)},
                tags=["Admin"],
                parameters=[cam],
            ),
            "put": op(
                "Switch the camera's recipe",
                {"200": json_content(obj, "switched"), **errors(400, 401, 404)},
                tags=["Admin"],
                parameters=[cam],
                requestBody={
                    "required": True,
                    "content": {
                        JSON: {
                            "schema": {
                                "type": "object",
                                "required": ["recipe"],
                                "properties": {"recipe": {"type": "string"}},
                            }
                        }
                    },
                },
            ),
        },
        f"{p}/cameras/{{camera}}/teach": {
            "post": op(
                "Teach references from the camera's next frames",
                {"201": json_content(obj, "taught"), **errors(400, 401, 404, 503)},
                tags=["Admin"],
                parameters=[cam],
                requestBody={
                    "content": {
                        JSON: {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "frames": {"type": "integer", "minimum": 1, "maximum": 1000},
                                    "recipe": {"type": "string"},
                                },
                            }
                        }
                    },
                },
            )
        },
        f"{p}/recipes": {
            "get": op(
                "Recipes with checks, limits and the cameras running them",
                {"200": json_content(obj, "recipes"), **errors(401)},
                tags=["Admin"],
            )
        },
        f"{p}/recipes/{{recipe}}": {
            "get": op(
                "One recipe",
                {"200": json_content(ref("Recipe"), "recipe"), **errors(401, 404)},
                tags=["Admin"],
                parameters=[rec],
            )
        },
        f"{p}/references": {
            "get": op(
                "Stored references with their versions",
                {"200": json_content(obj, "references"), **errors(401, 503)},
                tags=["Admin"],
                parameters=[
                    param("recipe", "query", {"type": "string"}, "Only this recipe"),
                    param("camera", "query", {"type": "string"}, "Only this camera"),
                ],
            )
        },
        f"{p}/references/{{recipe}}/{{camera}}": {
            "get": op(
                "References of one recipe and camera",
                {"200": json_content(ref("ReferenceEntry"), "versions"), **errors(401, 404, 503)},
                tags=["Admin"],
                parameters=[rec, cam],
            ),
            "post": op(
                "Teach: upload one image (JPEG/PNG body) or several (multipart) as a new version",
                {"201": json_content(obj, "new version"), **refs_503, **errors(415)},
                tags=["Admin"],
                parameters=[rec, cam],
                requestBody={
                    "required": True,
                    "content": {
                        "image/png": {"schema": {}},
                        "image/jpeg": {"schema": {}},
                        "application/octet-stream": {"schema": {}},
                        "multipart/form-data": {"schema": {"type": "object"}},
                    },
                },
            ),
            "delete": op(
                "Delete every version",
                {"200": json_content(obj, "deleted"), **errors(401, 404, 503)},
                tags=["Admin"],
                parameters=[rec, cam],
            ),
        },
        f"{p}/references/{{recipe}}/{{camera}}/rollback": {
            "post": op(
                "Activate a version (default: the one before the active)",
                {"200": json_content(obj, "active version"), **errors(400, 401, 404, 503)},
                tags=["Admin"],
                parameters=[rec, cam],
                requestBody={
                    "content": {
                        JSON: {
                            "schema": {
                                "type": "object",
                                "properties": {"version": {"type": "string"}},
                            }
                        }
                    }
                },
            )
        },
        f"{p}/references/{{recipe}}/{{camera}}/{{version}}": {
            "delete": op(
                "Delete one version",
                {"200": json_content(obj, "deleted"), **errors(401, 404, 503)},
                tags=["Admin"],
                parameters=[rec, cam, ver],
            )
        },
        f"{p}/results": {
            "get": op(
                "The newest Result of each camera (HTTP analyses under 'http')",
                {"200": json_content(obj, "results by camera"), **errors(401)},
                tags=["Admin"],
            )
        },
        f"{p}/results/{{camera}}": {
            "get": op(
                "The last n Results of one camera, oldest first",
                {
                    "200": json_content(
                        {
                            "type": "object",
                            "properties": {
                                "camera": {"type": "string"},
                                "results": {"type": "array", "items": ref("Result")},
                            },
                        },
                        "results",
                    ),
                    **errors(400, 401, 404),
                },
                tags=["Admin"],
                parameters=[
                    cam,
                    param(
                        "n",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": 50},
                        "How many (default 10)",
                    ),
                ],
            )
        },
    }


@functools.cache
def _document() -> Doc:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "edged",
            "version": __version__,
            "description": "Streaming edge daemon for factory camera lines: PEKAT-compatible "
            "analyze, LTU-style image services, PixLab-style imgdiff, admin API, health and "
            "metrics. When http.api_key is set, secured operations want it as the api_key "
            "query parameter, the X-API-Key header or a bearer token.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [
            {"name": n} for n in ("PEKAT", "LTU", "Deepomatic", "PixLab", "Admin", "Operations")
        ],
        "paths": {
            **_pekat_paths(),
            **_ltu_paths(),
            **_deepomatic_paths(),
            **_ops_paths(),
            **_admin_paths(),
            **station_paths(),
        },
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def openapi_document() -> Doc:
    """A fresh copy of the document (callers may modify it)."""
    return copy.deepcopy(_document())


PATH = "/api/v1/openapi.json"


async def openapi_json(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``: the document (public, like the health routes)."""
    return json_response(openapi_document())


def setup(app: web.Application) -> None:
    """Serve the OpenAPI document (admin JSON errors)."""
    register_family(app, ADMIN_FAMILY)
    app.router.add_get(PATH, openapi_json)
