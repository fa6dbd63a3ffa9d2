"""HTTP: PEKAT-compatible analyze, LTU-style image services, PixLab imgdiff, admin API."""

from edged.http._keys import RUNTIME
from edged.http.app import create_app, create_metrics_app

__all__ = ["RUNTIME", "create_app", "create_metrics_app"]
