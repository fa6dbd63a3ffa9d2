"""Component schemas of the OpenAPI document (see :mod:`edged.http.openapi`)."""

from __future__ import annotations

import copy

from edged.core.result import Result
from edged.http._openapi_util import Doc, ref


def schemas() -> Doc:
    """Every component schema: the Result family (from pydantic) and the API's own."""
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
        "detectedRectangles": {"type": "array", "items": ref("DetectedRectangle")},
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
        "required": ["result", "details", "code", "errors", "version"],
        "properties": {
            "result": {"type": ["object", "null"], "description": "null on errors"},
            "details": {
                "type": "object",
                "required": ["name", "score", "message", "info"],
                "properties": {
                    "name": {"type": "string"},
                    "score": {"type": ["number", "null"]},
                    "message": {"type": "string"},
                    "info": {"type": "object"},
                },
            },
            "code": {
                "type": ["integer", "string"],
                "description": '0, or the HTTP status of an error; the string "0" '
                "for classification and objectDetection, as the LTU document gives it",
            },
            "content": {
                "type": "object",
                "description": "classification, objectDetection: the document's answer",
            },
            "errors": {"type": "array", "items": {"type": "string"}},
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
            "details": {
                "type": ["object", "null"],
                "description": "source-specific facts: GenICam features applied and refused, "
                "process id, frames leased/copied, driver skips, timeouts; the mode a UVC "
                "camera really runs",
            },
            "last_result": {"type": ["object", "null"]},
            "verdicts": {
                "type": "object",
                "description": "results by verdict since start (total), over the last minute "
                "and the last hour (each with per_min: results per minute, and fail_per: "
                "failed parts in percent, null without results)",
            },
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
