"""OpenAPI paths of the station areas: kept failures, health, reference images, the web page."""

from __future__ import annotations

from edged.http._openapi_util import Doc, errors, json_content, op, param

_JPEG = {"description": "JPEG", "content": {"image/jpeg": {"schema": {}}}}
_OBJ = {"type": "object"}
_RESULT = {"$ref": "#/components/schemas/Result"}


def station_paths() -> Doc:
    """``/api/v1/failures...``, ``/api/v1/health``, the reference image and the page."""
    cam = param("camera", "path", {"type": "string"}, "Camera id", required=True)
    part = param("id", "path", {"type": "string"}, "Result id of a kept failed part", required=True)
    rec = param("recipe", "path", {"type": "string"}, "Recipe name", required=True)
    ver = param("version", "path", {"type": "string"}, "Reference version, e.g. v3", required=True)
    name = param("name", "path", {"type": "string"}, "File name", required=True)
    p = "/api/v1"
    return {
        f"{p}/failures": {
            "get": op(
                "The kept failed parts, newest first (state_dir/failures, bounded)",
                {"200": json_content(_OBJ, "failed parts"), **errors(400, 401, 404)},
                tags=["Admin"],
                parameters=[
                    param("camera", "query", {"type": "string"}, "Only this camera"),
                    param(
                        "n",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": 500},
                        "How many (default 50)",
                    ),
                ],
            )
        },
        f"{p}/failures/{{camera}}/{{id}}": {
            "get": op(
                "One kept failed part's Result",
                {"200": json_content(_RESULT, "Result"), **errors(401, 404)},
                tags=["Admin"],
                parameters=[cam, part],
            )
        },
        f"{p}/failures/{{camera}}/{{id}}/image.jpg": {
            "get": op(
                "One kept failed part, annotated (defect boxes and labels)",
                {"200": _JPEG, **errors(401, 404)},
                tags=["Admin"],
                parameters=[cam, part],
            )
        },
        f"{p}/health": {
            "get": op(
                "MQTT, outbox, dead letters, workers, queues and watchdog (the /metrics figures)",
                {"200": json_content(_OBJ, "health"), **errors(401)},
                tags=["Admin"],
            )
        },
        f"{p}/references/{{recipe}}/{{camera}}/{{version}}/image.jpg": {
            "get": op(
                "One stored image of a reference version as JPEG (a thumbnail by default)",
                {"200": _JPEG, **errors(400, 401, 404, 503)},
                tags=["Admin"],
                parameters=[
                    rec,
                    cam,
                    ver,
                    param("index", "query", {"type": "integer", "minimum": 0}, "Image (default 0)"),
                    param(
                        "width",
                        "query",
                        {"type": "integer", "minimum": 16, "maximum": 4096},
                        "Scale down to this width in pixels (default 320)",
                    ),
                ],
            )
        },
        "/": {
            "get": op(
                "The operator web page (public; its data comes from the admin API)",
                {"200": {"description": "HTML", "content": {"text/html": {"schema": {}}}}},
                secured=False,
                tags=["Operations"],
            )
        },
        "/ui/{name}": {
            "get": op(
                "A static file of the web page (public)",
                {"200": {"description": "the file"}, **errors(404)},
                secured=False,
                tags=["Operations"],
                parameters=[name],
            )
        },
        "/ui/swagger/{name}": {
            "get": op(
                "A static file of Swagger UI, the page's API view (public)",
                {"200": {"description": "the file"}, **errors(404)},
                secured=False,
                tags=["Operations"],
                parameters=[name],
            )
        },
    }
