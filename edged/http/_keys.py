"""Typed application keys shared by every HTTP module."""

from __future__ import annotations

from aiohttp import web

from edged.runtime.shared import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
