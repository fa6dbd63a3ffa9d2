"""Every relative link in README.md and docs/*.md points at a file that exists, and every
``#anchor`` at a heading of that file (GitHub's heading ids)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def heading_ids(text: str) -> set[str]:
    """GitHub's ids: lower case, punctuation dropped, spaces to hyphens, repeats -1, -2."""
    ids: set[str] = set()
    seen: dict[str, int] = {}
    for line in FENCE.sub("", text).splitlines():
        found = re.match(r"^#{1,6} (.+?)\s*#*$", line)
        if not found:
            continue
        title = re.sub(r"`([^`]*)`", r"\1", found.group(1))
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        ids.add(slug if n == 0 else f"{slug}-{n}")
    return ids


def _links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in _links(page):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
            continue
        ids = heading_ids(dest.read_text(encoding="utf-8")) if dest.suffix == ".md" else set()
        if anchor and dest.suffix == ".md" and anchor not in ids:
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert broken == []


def test_heading_ids_follow_github() -> None:
    text = "# A b\n## MQTT: every verdict delivered\n## `edged watch`\n## A b\n```\n# no\n```\n"
    assert heading_ids(text) == {"a-b", "mqtt-every-verdict-delivered", "edged-watch", "a-b-1"}
