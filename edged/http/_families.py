"""API families: which error shape a path answers in.

edged serves several vendors' APIs side by side; each has its own error body
(PEKAT and admin ``{"error", "status"}``, the LTU envelope, PixLab ``{"status",
"error"}``, ...). An HTTP area declares its family in its ``setup(app)`` with
:func:`register_family`: the paths it owns (exact ``paths`` and ``prefixes``)
and how an error becomes a body. The app's one error middleware
(:mod:`edged.http._error_middleware`) asks :func:`family_of` for the family of
the request and renders every error — the handler's own, 401, 404, 405, 413,
429 — in that shape. Paths no family claims get :data:`DEFAULT_FAMILY`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

JsonBody = dict[str, object]


@dataclass(frozen=True, slots=True)
class HttpError:
    """An error on its way to the client: HTTP status, reason, the error's kind (its
    class name, e.g. ``InputError`` or ``HTTPNotFound``) and, for 429, when to retry."""

    status: int
    message: str
    kind: str
    retry_after_s: float | None = None


ErrorRenderer = Callable[[web.Request, HttpError], JsonBody]
"""The JSON body of an error for this family (status and headers are the middleware's)."""


@dataclass(frozen=True, slots=True)
class ApiFamily:
    """One API's error shape and the paths it owns.

    ``prefixes`` are plain string prefixes (``"/analyze"`` owns ``/analyze_image``);
    ``paths`` are exact. The most specific claim wins: an exact path, else the
    longest prefix.
    """

    name: str
    render: ErrorRenderer
    prefixes: tuple[str, ...] = ()
    paths: frozenset[str] = frozenset()

    def claim(self, path: str) -> int:
        """How specifically this family owns ``path`` (-1: not at all)."""
        if path in self.paths:
            return len(path) + 1
        return max((len(p) for p in self.prefixes if path.startswith(p)), default=-1)


def plain_error_body(request: web.Request, error: HttpError) -> JsonBody:
    """``{"error": reason, "status": code}``: edged's own shape (admin, PEKAT, the rest)."""
    return {"error": error.message, "status": error.status}


DEFAULT_FAMILY = ApiFamily("edged", plain_error_body)
"""The family of every path no registered family claims."""

ADMIN_FAMILY = ApiFamily("admin", plain_error_body, prefixes=("/api/v1/",))
"""The admin API (cameras, recipes, references, results, the OpenAPI document)."""


class FamilyTable:
    """The families registered on one app."""

    def __init__(self) -> None:
        self._families: list[ApiFamily] = []

    def add(self, family: ApiFamily) -> None:
        """Register ``family``; the same family twice is a no-op, two owning one path an error."""
        if family in self._families:
            return
        claims = {*family.prefixes, *family.paths}
        for other in self._families:
            taken = claims & {*other.prefixes, *other.paths}
            if taken:
                msg = f"API family {family.name!r}: {sorted(taken)} already owned by {other.name!r}"
                raise ValueError(msg)
        self._families.append(family)

    def family_for(self, path: str) -> ApiFamily:
        best, best_claim = DEFAULT_FAMILY, -1
        for family in self._families:
            claim = family.claim(path)
            if claim > best_claim:
                best, best_claim = family, claim
        return best


FAMILIES = web.AppKey("edged.http.families", FamilyTable)


def register_family(app: web.Application, family: ApiFamily) -> None:
    """Declare that ``family`` renders the errors of the paths it claims on ``app``."""
    if FAMILIES not in app:
        app[FAMILIES] = FamilyTable()
    app[FAMILIES].add(family)


def route_path(request: web.Request) -> str:
    """The matched route's template (``/api/v1/cameras/{camera}``), else the raw path.

    Unmatched requests (404, 405) have no route; their path decides instead.
    """
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def family_of(request: web.Request) -> ApiFamily:
    """The family whose shape ``request``'s errors take."""
    table = request.app.get(FAMILIES)
    if table is None:
        return DEFAULT_FAMILY
    return table.family_for(route_path(request))
