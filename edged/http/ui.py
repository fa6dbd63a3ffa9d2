"""The operator web page: ``GET /`` and its static files under ``/ui/``.

Plain HTML, CSS and JavaScript shipped in the package (``edged/http/static/``), no
build step, nothing fetched from the internet: the page works offline. Everything
it shows or does goes through the admin API (``/api/v1/...``), so the page itself
and its files are public (:data:`edged.http._auth.PUBLIC_PATHS`) while the data
still wants the API key; the page asks for the key once and sends it as the
``X-API-Key`` header, never in a URL.

The API view is Swagger UI 5 from the ``swagger-ui-py`` package's static files
(Apache-2.0), served under ``/ui/swagger/``; only its files are read, the package
is not imported.
"""

from __future__ import annotations

import importlib.util
import mimetypes
from pathlib import Path

from aiohttp import web

from edged.core.errors import NotFoundError

STATIC_DIR = Path(__file__).with_name("static")
"""The page's own files (package data)."""

SWAGGER_FILES = frozenset(
    {"swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css", "LICENSE"}
)
"""The only Swagger UI files served (the bundle is large; nothing else is needed)."""

_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}


def swagger_dir() -> Path | None:
    """Where ``swagger-ui-py`` keeps Swagger UI's static files (None: not installed)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def _file_response(path: Path) -> web.FileResponse:
    content_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "text/plain"
    return web.FileResponse(
        path,
        headers={
            "Content-Type": f"{content_type}; charset=utf-8"
            if content_type.startswith("text/") or content_type.endswith("json")
            else content_type,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _own_file(name: str) -> Path:
    """A file of the page by its plain name (no directories, no hidden files)."""
    path = STATIC_DIR / name
    if name.startswith(".") or "/" in name or "\\" in name or not path.is_file():
        have = sorted(p.name for p in STATIC_DIR.iterdir() if p.is_file())
        msg = f"ui file: expected one of {have}, got {name!r}"
        raise NotFoundError(msg)
    return path


async def index(request: web.Request) -> web.StreamResponse:
    """``GET /``: the page."""
    return _file_response(_own_file("index.html"))


async def static_file(request: web.Request) -> web.StreamResponse:
    """``GET /ui/{name}``: one of the page's files."""
    return _file_response(_own_file(request.match_info["name"]))


async def swagger_file(request: web.Request) -> web.StreamResponse:
    """``GET /ui/swagger/{name}``: one of Swagger UI's files."""
    name = request.match_info["name"]
    base = swagger_dir()
    if base is None:
        msg = "Swagger UI: expected the swagger-ui-py package to be installed, got none"
        raise NotFoundError(msg)
    if name not in SWAGGER_FILES:
        msg = f"Swagger UI file: expected one of {sorted(SWAGGER_FILES)}, got {name!r}"
        raise NotFoundError(msg)
    return _file_response(base / name)


PUBLIC = ("/", "/ui/{name}", "/ui/swagger/{name}")
"""This area's route templates; all public (the data behind them is not)."""


def setup(app: web.Application) -> None:
    """Add ``/`` and the static files of the page and of Swagger UI."""
    app.router.add_get("/", index)
    app.router.add_get("/ui/{name}", static_file)
    app.router.add_get("/ui/swagger/{name}", swagger_file)
