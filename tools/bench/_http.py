"""placeholder"""

from __future__ import annotations

from tools.bench._context import Bench
from tools.bench._report import SectionReport, not_available

NAME = "http"
TITLE = "http"


def run(bench: Bench) -> SectionReport:
    return not_available(NAME, TITLE, "todo")
