"""The OpenAPI 3.1 document of every edged HTTP endpoint, served at ``/api/v1/openapi.json``.

Hand-written as data: PEKAT-compatible analyze, LTU-style image services,
PixLab-style ``imgdiff``, the admin API, health and metrics. The Result schema
comes from the pydantic model, so it cannot drift from what edged sends.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from edged._version import __version__
from edged.result import Result

JSON = "application/json"
Doc = dict[str, Any]


def _ref(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Doc, description: str) -> Doc:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*codes: int) -> Doc:
    reasons = {
        400: "Malformed request (the reason says what was expected and what came)",
        401: "Missing or wrong API key",
        403: "Not allowed (shared memory from another host, or switched off)",
        404: "Unknown recipe, camera, version or shared-memory block",
        408: "The request body did not arrive within http.request_timeout_s",
        413: "Body over http.max_body_bytes or image over http.max_pixels",
        415: "Body is not a JPEG or PNG file",
        422: "The query image could not be registered onto its reference",
        429: "All http.max_concurrent analysis slots are busy; retry after Retry-After",
        503: "Analysis timed out, or a needed component is not configured",
    }
    out: Doc = {}
    for code in codes:
        resp = _json(_ref("Error"), reasons[code])
        if code == 429:
            resp["headers"] = {
                "Retry-After": {"description": "seconds", "schema": {"type": "integer"}}
            }
        out[str(code)] = resp
    return out


_SECURED: list[Doc] = [{"apiKeyQuery": []}, {"apiKeyHeader": []}, {"bearer": []}, {}]


def _op(summary: str, responses: Doc, *, secured: bool = True, **extra: Any) -> Doc:
    op: Doc = {"summary": summary, "responses": responses, **extra}
    if secured:
        op["security"] = _SECURED
    return op


def _param(name: str, where: str, schema: Doc, description: str, **extra: Any) -> Doc:
    return {"name": name, "in": where, "schema": schema, "description": description, **extra}


# --------------------------------------------------------------------- PEKAT


_ANALYZE_PARAMS: list[Doc] = [
    _param(
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
    _param(
        "context_in_body",
        "query",
        {"type": "string"},
        "Flag (bare, or 1/true/0/false). Image responses then carry PNG + context JSON in "
        "the body, with header ImageLen giving the PNG's length",
        allowEmptyValue=True,
    ),
    _param("data", "query", {"type": "string"}, "Any text, copied into the context as data"),
    _param("recipe", "query", {"type": "string"}, "Recipe to run (default: http.default_recipe)"),
]
_SIZE_PARAMS: list[Doc] = [
    _param("width", "query", {"type": "integer", "minimum": 1}, "Image width, px", required=True),
    _param("height", "query", {"type": "integer", "minimum": 1}, "Image height, px", required=True),
    _param(
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
            JSON: {"schema": _ref("PekatContext")},
            "image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}},
            "application/octet-stream": {
                "schema": {"type": "string", "description": "PNG followed by context JSON"}
            },
        },
    }
    return {"200": ok, **_errors(400, 401, 404, 408, 413, 429, 503)}


def _pekat_paths() -> Doc:
    binary = {"type": "string", "contentMediaType": "application/octet-stream"}
    return {
        "/analyze_image": {
            "post": _op(
                "Analyze a JPEG or PNG image (PEKAT-compatible)",
                {**_analyze_responses(), **_errors(415)},
                tags=["PEKAT"],
                parameters=_ANALYZE_PARAMS,
                requestBody={
                    "required": True,
                    "content": {"application/octet-stream": {"schema": binary}},
                },
            )
        },
        "/analyze_raw_image": {
            "post": _op(
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
            "post": _op(
                "Analyze raw pixels in a POSIX shared-memory block (clients on this host)",
                {**_analyze_responses(), **_errors(403)},
                tags=["PEKAT"],
                parameters=[
                    *_SIZE_PARAMS,
                    _param("name", "query", {"type": "string"}, "Block name", required=True),
                    *_ANALYZE_PARAMS,
                ],
            )
        },
        "/ping": {
            "get": _op(
                "200 while edged serves",
                {"200": {"description": "pong", "content": {"text/plain": {"schema": {}}}}},
                secured=False,
                tags=["PEKAT"],
            )
        },
        "/version": {
            "get": _op(
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

_LTU_SINGLE = {
    "imageQuality": "Exposure (under/over), sharpness and noise figures",
    "objectMaskDetection": "Binary mask of the object, with area and bounding box",
    "contours": "Contours with bounding boxes and relative vertices, largest first",
    "edges": "Edge image (PNG) and the edge-pixel fraction",
    "colorPalette": "Most prevalent colours as [R, G, B, percent]",
    "heatMap": "Heat map of where the image's interest lies (PNG)",
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


def _ltu_paths() -> Doc:
    paths: Doc = {}
    envelope = {
        "200": _json(_ref("LtuEnvelope"), "Result envelope"),
        "400": _json(_ref("LtuEnvelope"), "Bad input; details.message says what was wrong"),
        **_errors(401, 413),
    }
    for name, summary in _LTU_SINGLE.items():
        paths[f"/v2/services/image/{name}"] = {
            "post": _op(summary, envelope, tags=["LTU"], requestBody=_ltu_body("image"))
        }
    for name, (a, b, summary) in _LTU_PAIR.items():
        paths[f"/v2/services/image/{name}"] = {
            "post": _op(
                summary, {**envelope, **_errors(422)}, tags=["LTU"], requestBody=_ltu_body(a, b)
            )
        }
    paths["/imgdiff"] = {
        "post": _op(
            "Mean square error of two same-size images (PixLab-style); blob=true returns PNG",
            {
                "200": {
                    "description": "MSE as JSON, or the difference image with blob=true",
                    "content": {
                        JSON: {"schema": {"type": "object"}},
                        "image/png": {"schema": {"type": "string"}},
                    },
                },
                **_errors(400, 401, 413),
            },
            tags=["PixLab"],
            parameters=[_param("blob", "query", {"type": "boolean"}, "Return the PNG")],
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
        )
    }
    return paths


# --------------------------------------------------------------------- operations


def _ops_paths() -> Doc:
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "/healthz": {
            "get": _op(
                "Liveness: the process serves HTTP",
                {"200": _json({"type": "object"}, "ok")},
                secured=False,
                tags=["Operations"],
            )
        },
        "/readyz": {
            "get": _op(
                "Readiness of every component",
                {
                    "200": _json(_ref("Readiness"), "all components ready"),
                    "503": _json(_ref("Readiness"), "some component not ready"),
                },
                secured=False,
                tags=["Operations"],
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics (text exposition format)",
                {"200": {"description": "metrics", "content": text}},
                secured=False,
                tags=["Operations"],
            )
        },
    }


# --------------------------------------------------------------------- admin


def _admin_paths() -> Doc:
    cam = _param("camera", "path", {"type": "string"}, "Camera id", required=True)
    rec = _param("recipe", "path", {"type": "string"}, "Recipe name", required=True)
    ver = _param("version", "path", {"type": "string"}, "Reference version", required=True)
    obj = {"type": "object"}
    p = "/api/v1"
    refs_503 = _errors(400, 401, 404, 413, 503)
    return {
        f"{p}/openapi.json": {
            "get": _op(
                "This document", {"200": _json(obj, "OpenAPI 3.1")}, secured=False, tags=["Admin"]
            )
        },
        f"{p}/cameras": {
            "get": _op(
                "Cameras with their state, recipe and last verdict",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"cameras": {"type": "array", "items": _ref("Camera")}},
                        },
                        "cameras",
                    ),
                    **_errors(401),
                },
                tags=["Admin"],
            )
        },
        f"{p}/cameras/{{camera}}": {
            "get": _op(
                "One camera",
                {"200": _json(_ref("Camera"), "camera"), **_errors(401, 404)},
                tags=["Admin"],
                parameters=[cam],
            )
        },
        f"{p}/cameras/{{camera}}/frame.jpg": {
            "get": _op(
                "The camera's last frame as JPEG",
                {
                    "200": {"description": "JPEG", "content": {"image/jpeg": {"schema": {}}}},
                    **_errors(400, 401, 404),
                },
                tags=["Admin"],
                parameters=[
                    cam,
                    _param(
                        "quality",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": 100},
                        "JPEG quality (default 90)",
                    ),
                ],
            )
        },
        f"{p}/cameras/{{camera}}/trigger": {
            "post": _op(
                "Fire a software trigger",
                {"202": _json(obj, "triggered"), **_errors(400, 401, 404)},
                tags=["Admin"],
                parameters=[cam],
            )
        },
        f"{p}/cameras/{{camera}}/recipe": {
            "get": _op(
                "The camera's active recipe",
                {"200": _json(obj, "recipe"), **_errors(401, 404)},
                tags=["Admin"],
                parameters=[cam],
            ),
            "put": _op(
                "Switch the camera's recipe",
                {"200": _json(obj, "switched"), **_errors(400, 401, 404)},
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
            "post": _op(
                "Teach references from the camera's next frames",
                {"201": _json(obj, "taught"), **_errors(400, 401, 404, 503)},
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
            "get": _op(
                "Recipes with checks, limits and the cameras running them",
                {"200": _json(obj, "recipes"), **_errors(401)},
                tags=["Admin"],
            )
        },
        f"{p}/recipes/{{recipe}}": {
            "get": _op(
                "One recipe",
                {"200": _json(_ref("Recipe"), "recipe"), **_errors(401, 404)},
                tags=["Admin"],
                parameters=[rec],
            )
        },
        f"{p}/references": {
            "get": _op(
                "Stored references with their versions",
                {"200": _json(obj, "references"), **_errors(401, 503)},
                tags=["Admin"],
                parameters=[
                    _param("recipe", "query", {"type": "string"}, "Only this recipe"),
                    _param("camera", "query", {"type": "string"}, "Only this camera"),
                ],
            )
        },
        f"{p}/references/{{recipe}}/{{camera}}": {
            "get": _op(
                "References of one recipe and camera",
                {"200": _json(_ref("ReferenceEntry"), "versions"), **_errors(401, 404, 503)},
                tags=["Admin"],
                parameters=[rec, cam],
            ),
            "post": _op(
                "Teach: upload one image (JPEG/PNG body) or several (multipart) as a new version",
                {"201": _json(obj, "new version"), **refs_503, **_errors(415)},
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
            "delete": _op(
                "Delete every version",
                {"200": _json(obj, "deleted"), **_errors(401, 404, 503)},
                tags=["Admin"],
                parameters=[rec, cam],
            ),
        },
        f"{p}/references/{{recipe}}/{{camera}}/rollback": {
            "post": _op(
                "Activate a version (default: the one before the active)",
                {"200": _json(obj, "active version"), **_errors(400, 401, 404, 503)},
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
            "delete": _op(
                "Delete one version",
                {"200": _json(obj, "deleted"), **_errors(401, 404, 503)},
                tags=["Admin"],
                parameters=[rec, cam, ver],
            )
        },
        f"{p}/results": {
            "get": _op(
                "The newest Result of each camera (HTTP analyses under 'http')",
                {"200": _json(obj, "results by camera"), **_errors(401)},
                tags=["Admin"],
            )
        },
        f"{p}/results/{{camera}}": {
            "get": _op(
                "The last n Results of one camera, oldest first",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "camera": {"type": "string"},
                                "results": {"type": "array", "items": _ref("Result")},
                            },
                        },
                        "results",
                    ),
                    **_errors(400, 401, 404),
                },
                tags=["Admin"],
                parameters=[
                    cam,
                    _param(
                        "n",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": 50},
                        "How many (default 10)",
                    ),
                ],
            )
        },
    }


# --------------------------------------------------------------------- components


def _schemas() -> Doc:
    result = Result.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    defs = result.pop("$defs", {})
    schemas: Doc = {**defs, "Result": result}
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "status"],
        "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
    }
    schemas["DetectedRectangle"] = {
        "type": "object",
        "required": ["id", "x", "y", "width", "height", "classNames"],
        "properties": {
            "id": {"type": "integer"},
            "x": {"type": "integer"},
            "y": {"type": "integer"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "classNames": {
                "type": "array",
                "items": {"type": "object", "properties": {"label": {"type": "string"}}},
            },
            "confidence": {"type": "number"},
            "check": {"type": "string"},
        },
    }
    pekat_fields: Doc = {
        "detectedRectangles": {"type": "array", "items": _ref("DetectedRectangle")},
        "result": {"type": "boolean", "description": "true when the image is OK"},
        "data": {"type": "string", "description": "the request's data parameter"},
        "completeTime": {"type": "number", "description": "processing time, seconds"},
        "imageShape": {
            "type": "object",
            "properties": {"height": {"type": "integer"}, "width": {"type": "integer"}},
        },
        "truncated": {
            "type": "object",
            "description": "header contexts only: region lists were cut to fit the header",
        },
    }
    context = copy.deepcopy(result)
    context["title"] = "PekatContext"
    context["description"] = "edged's Result plus the fields PEKAT clients read"
    context["properties"] = {**context["properties"], **pekat_fields}
    context["required"] = [
        *context.get("required", []),
        "detectedRectangles",
        "result",
        "data",
        "completeTime",
    ]
    schemas["PekatContext"] = context
    schemas["LtuEnvelope"] = {
        "type": "object",
        "required": ["result", "details", "version"],
        "properties": {
            "result": {"type": "object"},
            "details": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "score": {"type": ["number", "null"]},
                    "message": {"type": "string"},
                    "info": {"type": "object"},
                },
            },
            "version": {"type": "string"},
        },
    }
    schemas["Readiness"] = {
        "type": "object",
        "properties": {
            "ready": {"type": "boolean"},
            "components": {"type": "object", "additionalProperties": {"type": "boolean"}},
        },
    }
    schemas["Camera"] = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "running": {"type": "boolean"},
            "source": {"type": ["string", "null"]},
            "recipe": {"type": ["string", "null"]},
            "state": {"type": ["object", "null"]},
            "last_result": {"type": ["object", "null"]},
        },
    }
    schemas["Recipe"] = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "checks": {"type": "array", "items": {"type": "string"}},
            "options": {"type": "object"},
            "limits": {"type": "array", "items": {"type": "string"}},
            "needs_reference": {"type": "boolean"},
            "http_default": {"type": "boolean"},
            "cameras": {"type": "array", "items": {"type": "string"}},
        },
    }
    schemas["ReferenceEntry"] = {
        "type": "object",
        "properties": {
            "recipe": {"type": "string"},
            "camera": {"type": "string"},
            "active": {"type": ["string", "null"]},
            "versions": {"type": "array", "items": {"type": "object"}},
        },
    }
    return schemas


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
        "tags": [{"name": n} for n in ("PEKAT", "LTU", "PixLab", "Admin", "Operations")],
        "paths": {**_pekat_paths(), **_ltu_paths(), **_ops_paths(), **_admin_paths()},
        "components": {
            "schemas": _schemas(),
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
