"""Building blocks of the OpenAPI document (see :mod:`edged.http.openapi`)."""

from __future__ import annotations

from typing import Any

JSON = "application/json"
Doc = dict[str, Any]


def ref(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: Doc, description: str) -> Doc:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def errors(*codes: int) -> Doc:
    reasons = {
        400: "Malformed request (the reason says what was expected and what came)",
        401: "Missing or wrong API key",
        403: "Not allowed (shared memory from another host, or switched off)",
        404: "Unknown recipe, camera, version or shared-memory block",
        408: "The request body did not arrive within http.request_timeout_s",
        413: "Body over http.max_body_bytes or image over http.max_pixels",
        415: "Body is not a JPEG or PNG file",
        422: "The query image could not be registered onto its reference",
        429: "All http.max_concurrent analysis slots are busy and the wait queue "
        "(http.queue_depth, http.queue_timeout_s) is full or ran out; retry after Retry-After",
        503: "Analysis timed out, or a needed component is not configured",
    }
    out: Doc = {}
    for code in codes:
        resp = json_content(ref("Error"), reasons[code])
        if code == 429:
            resp["headers"] = {
                "Retry-After": {"description": "seconds", "schema": {"type": "integer"}}
            }
        out[str(code)] = resp
    return out


_SECURED: list[Doc] = [{"apiKeyQuery": []}, {"apiKeyHeader": []}, {"bearer": []}, {}]


def op(summary: str, responses: Doc, *, secured: bool = True, **extra: Any) -> Doc:
    op: Doc = {"summary": summary, "responses": responses, **extra}
    if secured:
        op["security"] = _SECURED
    return op


def param(name: str, where: str, schema: Doc, description: str, **extra: Any) -> Doc:
    return {"name": name, "in": where, "schema": schema, "description": description, **extra}
