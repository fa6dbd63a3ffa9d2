"""Read printed text: lines and words with boxes and confidences, on a region.

:func:`read_text` crops the region (a label is read on its own: page junk around
it is not text), normalises it for the engine and runs Tesseract (``tesserocr``,
which bundles libtesseract) on it:

1. grey; polarity: light print on a dark ground is inverted (``auto`` decides by
   Otsu: the ink is the minority class); ink spanning 90 % of the crop's height or
   width (a label's frame, the belt edge), and thin lines entering from a side
   (a label's edge turned into the region) are removed: they are not text;
2. ``dot_matrix_px`` > 0: morphological closing of the ink with a disk of that
   diameter, so inkjet / dot-matrix dots merge into strokes;
3. rescale so the median glyph is about ``glyph_px`` tall (Tesseract's LSTM reads
   ~20-40 px glyphs best: small print is misread, large print gets erratic
   confidences; rescaled when the median is outside 0.75..1.5 x ``glyph_px``);
4. deskew: the angle within ``±max_skew_deg`` whose row projection of the ink is
   sharpest (sum of squared row counts, 0.25° steps), and the crop rotated by it;
5. a white margin, then recognition with the page-segmentation ``layout``.

Boxes are mapped back through every step into pixels of the input image
(axis-aligned around the rotated word box). Confidences are Tesseract's, in
[0, 1]. Engines are created once per worker thread and language (a Tesseract API
object is not thread-safe; one per thread keeps both cores busy without a lock,
see tools/bench_ocr.py) and reused for every later call.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field, model_validator

from edged.checks._base import CheckOptions
from edged.checks._box import Box
from edged.checks._image import require_image, to_grey
from edged.checks._ocr_data import resolve_tessdata
from edged.core.errors import EdgedError

Layout = Literal["auto", "block", "line", "word", "sparse"]
Polarity = Literal["auto", "dark", "light"]
ENGINE = "tesseract"

_MARGIN_PX = 12
_SKEW_STEP_DEG = 0.25
_MIN_SKEW_DEG = 0.25  # smaller skews are left to the engine
_MAX_PAGE_PX = 4_000_000  # rescaling never makes the engine's page larger than this
_MAX_SKEW_POINTS = 20_000


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word: its text, confidence in [0, 1] and box in input pixels."""

    text: str
    confidence: float
    box: Box

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "box": self.box.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Line:
    """One text line: its words joined by single spaces, the weakest word's
    confidence, and the box around its words."""

    text: str
    confidence: float
    box: Box
    words: tuple[Word, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "box": self.box.to_dict(),
            "words": [w.to_dict() for w in self.words],
        }


@dataclass(frozen=True, slots=True)
class TextReading:
    """What :func:`read_text` read in ``region`` (input pixels).

    ``text`` is the lines joined by ``\\n``; ``confidence`` the weakest word's (0.0
    when nothing was read); ``skew_deg`` the rotation removed before reading;
    ``scale`` the upscale factor used.
    """

    lines: tuple[Line, ...]
    region: Box
    skew_deg: float
    scale: float
    engine: str
    language: str

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for line in self.lines for w in line.words)

    @property
    def confidence(self) -> float:
        words = self.words
        return min(w.confidence for w in words) if words else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "region": self.region.to_dict(),
            "skew_deg": round(self.skew_deg, 3),
            "scale": round(self.scale, 3),
            "engine": self.engine,
            "language": self.language,
            "lines": [line.to_dict() for line in self.lines],
        }


def read_text(
    image: np.ndarray,
    *,
    region: Box | None = None,
    language: str = "eng",
    tessdata_dir: str | Path | None = None,
    layout: Layout = "block",
    polarity: Polarity = "auto",
    dot_matrix_px: int = 0,
    glyph_px: int = 28,
    deskew: bool = True,
    max_skew_deg: float = 5.0,
    charset: str | None = None,
    timeout_ms: int = 2000,
) -> TextReading:
    """Read the text of ``image`` inside ``region``.

    image: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR.
    region: the box to read, in image pixels; None reads the whole image. A box not
        entirely inside the image is an error (a misplaced region reads nothing).
    language: Tesseract language name(s), ``eng`` or ``eng+deu``; their data must be
        installed (see :mod:`edged.checks._ocr_data`).
    layout: ``block`` (a label: one block of lines), ``line``, ``word``, ``sparse``
        (scattered text) or ``auto`` (full page analysis).
    polarity: ``dark`` print on a light ground, ``light`` print on dark, ``auto``.
    dot_matrix_px: closing diameter merging printed dots into strokes; 0 = off.
    glyph_px: the median glyph height the engine should see; 0 = never rescale.
    deskew / max_skew_deg: straighten text rotated by up to that many degrees.
    charset: only these characters may be read (e.g. ``"0123456789LOT "``).
    timeout_ms: give up recognition after this long (a page of noise can take
        seconds); 0 = no limit. Tesseract's page layout analysis, before recognition,
        cannot be interrupted: upscaling is capped at 4 MP pages to bound it.

    Raises InputError for a bad image, ValueError for a region outside the image or
    options out of range, LanguageDataError when the language data is missing,
    RecognitionTimeout when recognition took longer than ``timeout_ms``.
    """
    image = require_image(image)
    h, w = image.shape[:2]
    box = _checked_region(region, w, h)
    if not 0 <= dot_matrix_px <= 31:
        msg = f"dot_matrix_px: expected 0..31, got {dot_matrix_px!r}"
        raise ValueError(msg)
    if not 0 <= glyph_px <= 200:
        msg = f"glyph_px: expected 0..200, got {glyph_px!r}"
        raise ValueError(msg)
    if not 0 <= timeout_ms <= 600_000:
        msg = f"timeout_ms: expected 0..600000, got {timeout_ms!r}"
        raise ValueError(msg)
    if not 0.0 <= max_skew_deg <= 45.0:
        msg = f"max_skew_deg: expected 0..45, got {max_skew_deg!r}"
        raise ValueError(msg)
    data_dir = resolve_tessdata(language, tessdata_dir)
    grey = to_grey(image)[box.y : box.y + box.height, box.x : box.x + box.width]
    ink = _without_rules(_ink(grey, polarity))  # ink bright (255) on dark (0), uint8
    if dot_matrix_px > 0:
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (dot_matrix_px, dot_matrix_px))
        ink = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, disk)
    # Affine map from crop pixels to the pixels the engine sees (3x3, homogeneous).
    to_engine = np.eye(3)
    glyphs, median_glyph_px = _glyphs(ink)
    scale = _scale_for(median_glyph_px, glyph_px, ink.size)
    if scale != 1.0:
        shrink = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
        ink = cv2.resize(ink, None, fx=scale, fy=scale, interpolation=shrink)
        to_engine = np.diag([scale, scale, 1.0]) @ to_engine
    skew = _skew_deg(glyphs, max_skew_deg) if deskew and max_skew_deg > 0 else 0.0
    ih, iw = ink.shape
    m = np.eye(3)
    m[:2] = cv2.getRotationMatrix2D((iw / 2.0, ih / 2.0), skew, 1.0)
    m[:2, 2] += _MARGIN_PX
    out_w, out_h = iw + 2 * _MARGIN_PX, ih + 2 * _MARGIN_PX
    ground = int(np.median(ink))  # most of a crop is ground
    page = cv2.warpAffine(
        ink, m[:2], (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=ground
    )  # the margin and rotated-in corners continue the ground: no edges to misread
    to_engine = m @ to_engine
    page = cv2.bitwise_not(page)  # Tesseract reads dark print on a light page
    to_input = np.linalg.inv(to_engine)
    to_input[:2, 2] += (box.x, box.y)
    raw = _recognise(page, data_dir, language, layout, charset, timeout_ms)
    lines = tuple(_map_line(words, to_input, w, h) for words in raw if words)
    return TextReading(lines, box, skew, scale, ENGINE, language)


def _checked_region(region: Box | None, w: int, h: int) -> Box:
    if region is None:
        return Box(0, 0, w, h)
    inside = (
        region.x >= 0
        and region.y >= 0
        and region.width > 0
        and region.height > 0
        and region.x + region.width <= w
        and region.y + region.height <= h
    )
    if not inside:
        msg = (
            f"region: expected a box inside the {w}x{h} image, got x={region.x} y={region.y} "
            f"width={region.width} height={region.height}"
        )
        raise ValueError(msg)
    return region


def _ink(grey: np.ndarray, polarity: Polarity) -> np.ndarray:
    """Ink bright on a dark ground, contrast stretched to 0..255 (not binarised:
    Tesseract's LSTM reads anti-aliased strokes better than thresholded ones)."""
    lo, hi = (float(v) for v in np.percentile(grey, (1, 99)))
    if hi - lo < 1.0:
        return np.zeros_like(grey)
    stretched = cv2.convertScaleAbs(grey, alpha=255.0 / (hi - lo), beta=-lo * 255.0 / (hi - lo))
    if polarity == "auto":
        level, _ = cv2.threshold(stretched, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        dark_share = float(np.count_nonzero(stretched <= level)) / stretched.size
        polarity = "dark" if dark_share < 0.5 else "light"
    return cv2.bitwise_not(stretched) if polarity == "dark" else stretched


def _glyphs(ink: np.ndarray) -> tuple[np.ndarray, float]:
    """The glyph-sized ink components (a mask) and their median height in pixels.

    Components shorter than 3 px are specks; much taller or wider than the median
    are frames, bars or the belt around a label: none of them is text.
    """
    _, binary = cv2.threshold(ink, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    widths = stats[1:, cv2.CC_STAT_WIDTH]
    tall_enough = heights >= 3
    if not np.any(tall_enough):
        return np.zeros_like(binary), 0.0
    median = float(np.median(heights[tall_enough]))
    keep = tall_enough & (heights <= 3 * median) & (widths <= 8 * median)
    lut = np.zeros(n, np.uint8)
    lut[1:][keep] = 255
    return lut[labels], median


def _without_rules(ink: np.ndarray) -> np.ndarray:
    """``ink`` with frame lines and rules removed, they are not text: components
    spanning at least 90 % of the crop's height or width (a label's border, the belt
    edge), and thin lines entering from a side of the crop (the edge of a label
    turned or shifted into the region: at most a quarter as wide as long, touching
    the crop's side, and longer than 1.5 median glyph heights; a glyph cut by the
    side is as long as a glyph). They go with a pixel around them, where their
    anti-aliased fringe lies below the ink threshold (left there, it was read as
    ``|`` and took the confidence of the word next to it down to 0)."""
    _, binary = cv2.threshold(ink, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    h, w = ink.shape
    x, y = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    cw, ch = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    rules = (ch >= 0.9 * h) | (cw >= 0.9 * w)
    tall_enough = ch >= 3
    glyph = float(np.median(ch[tall_enough])) if np.any(tall_enough) else 0.0
    at_side = (x == 0) | (x + cw == w)
    at_top_or_bottom = (y == 0) | (y + ch == h)
    upright = at_side & (ch >= 1.5 * glyph) & (4 * cw <= ch)
    lying = at_top_or_bottom & (cw >= 1.5 * glyph) & (4 * ch <= cw)
    rules |= upright | lying
    if not np.any(rules):
        return ink
    lut = np.zeros(n, np.uint8)
    lut[1:][rules] = 255
    mask = cv2.dilate(lut[labels], np.ones((3, 3), np.uint8))
    out = ink.copy()
    out[mask > 0] = 0
    return out


def _scale_for(median_glyph_px: float, glyph_px: int, area_px: int) -> float:
    """The scale that brings the median glyph height to ``glyph_px`` (0.25..4), or 1
    when it is already within 0.75..1.5 x ``glyph_px``; an upscale never makes the
    page larger than ``_MAX_PAGE_PX`` (a crop of specks would become megapixels)."""
    if glyph_px <= 0 or median_glyph_px <= 0:
        return 1.0
    if 0.75 * glyph_px <= median_glyph_px <= 1.5 * glyph_px:
        return 1.0
    scale = float(np.clip(glyph_px / median_glyph_px, 0.25, 4.0))
    if scale > 1.0:
        scale = max(1.0, min(scale, (_MAX_PAGE_PX / max(1, area_px)) ** 0.5))
    return scale


def _skew_deg(glyphs: np.ndarray, max_skew_deg: float) -> float:
    """The rotation (degrees, OpenCV sign) that makes the glyphs' rows sharpest."""
    ys, xs = np.nonzero(glyphs)
    if xs.size < 50:
        return 0.0
    if xs.size > _MAX_SKEW_POINTS:
        pick = np.linspace(0, xs.size - 1, _MAX_SKEW_POINTS).astype(np.intp)
        xs, ys = xs[pick], ys[pick]
    h, w = glyphs.shape
    px, py = xs.astype(np.float64) - w / 2.0, ys.astype(np.float64) - h / 2.0
    best, best_score = 0.0, -1.0
    for angle in np.arange(-max_skew_deg, max_skew_deg + 1e-9, _SKEW_STEP_DEG):
        a = np.deg2rad(angle)
        rows = np.round(-np.sin(a) * px + np.cos(a) * py).astype(np.intp)
        counts = np.bincount(rows - rows.min())
        score = float(np.dot(counts, counts))
        if score > best_score * (1 + 1e-9) or (score >= best_score and abs(angle) < abs(best)):
            best, best_score = float(angle), score
    return best if abs(best) >= _MIN_SKEW_DEG else 0.0


class ReadOptions(CheckOptions):
    """How :func:`read_text` reads (shared by the ``text`` check and textDetection).

    The language's data must be installed: a missing file is a validation error
    naming it, so it is refused when a recipe loads or a request arrives.
    """

    language: str = Field(default="eng", description="Tesseract language(s): 'eng', 'eng+deu'")
    layout: Layout = "block"
    polarity: Polarity = "auto"
    dot_matrix_px: int = Field(default=0, ge=0, le=31, description="closing for dotted print")
    glyph_px: int = Field(default=28, ge=0, le=200, description="glyph height read at")
    deskew: bool = True
    max_skew_deg: float = Field(default=5.0, ge=0.0, le=45.0)
    charset: str | None = Field(default=None, min_length=1)
    timeout_ms: int = Field(default=2000, ge=0, le=600_000, description="0 = no limit")

    def data_dir(self) -> str | None:
        """Where the language data is; None: the default places."""
        return None

    @model_validator(mode="after")
    def _engine_installed(self) -> ReadOptions:
        try:
            require_engine()
        except ImportError as exc:
            raise ValueError(str(exc)) from exc
        resolve_tessdata(self.language, self.data_dir())  # LanguageDataError: a ValueError
        return self

    def read_kwargs(self) -> dict[str, Any]:
        """:func:`read_text`'s keyword arguments (all but ``region``)."""
        return {
            "language": self.language,
            "tessdata_dir": self.data_dir(),
            "layout": self.layout,
            "polarity": self.polarity,
            "dot_matrix_px": self.dot_matrix_px,
            "glyph_px": self.glyph_px,
            "deskew": self.deskew,
            "max_skew_deg": self.max_skew_deg,
            "charset": self.charset,
            "timeout_ms": self.timeout_ms,
        }


# --- the engine ------------------------------------------------------------------------

_RawWord = tuple[str, float, tuple[int, int, int, int]]
_local = threading.local()


def require_engine() -> None:
    """Raise ImportError saying how to install the engine when tesserocr is missing."""
    import importlib.util

    if importlib.util.find_spec("tesserocr") is None:
        msg = (
            "text recognition: expected the tesserocr package "
            "(a dependency of edged: pip install 'tesserocr>=2.7,<3')"
        )
        raise ImportError(msg)


@functools.cache
def engine_version() -> str:
    """The libtesseract version string (first line of tesserocr's report)."""
    import tesserocr

    return str(tesserocr.tesseract_version()).splitlines()[0]


def _api(data_dir: Path, language: str) -> Any:
    """This thread's Tesseract API for ``(data_dir, language)``, created on first use."""
    cache: dict[tuple[str, str], Any] | None = getattr(_local, "apis", None)
    if cache is None:
        cache = {}
        _local.apis = cache
    key = (str(data_dir), language)
    api = cache.get(key)
    if api is None:
        import tesserocr

        api = tesserocr.PyTessBaseAPI(path=f"{data_dir}/", lang=language)
        cache[key] = api
    return api


class RecognitionTimeout(EdgedError):
    """Recognition gave up after its time limit (HTTP: 503, like other work that
    misses its deadline)."""

    http_status = 503


def _recognise(
    page: np.ndarray,
    data_dir: Path,
    language: str,
    layout: Layout,
    charset: str | None,
    timeout_ms: int,
) -> list[list[_RawWord]]:
    """Words of ``page`` (``(H, W)`` uint8, dark print on white), grouped in lines."""
    from tesserocr import PSM, RIL, iterate_level

    psm = {
        "auto": PSM.AUTO,
        "block": PSM.SINGLE_BLOCK,
        "line": PSM.SINGLE_LINE,
        "word": PSM.SINGLE_WORD,
        "sparse": PSM.SPARSE_TEXT,
    }[layout]
    api = _api(data_dir, language)
    page = np.ascontiguousarray(page)
    h, w = page.shape
    api.SetPageSegMode(psm)
    api.SetVariable("tessedit_char_whitelist", charset or "")
    api.SetImageBytes(page.tobytes(), w, h, 1, w)
    api.SetSourceResolution(300)
    if not api.Recognize(timeout=timeout_ms):
        api.Clear()
        h, w = page.shape
        msg = f"text recognition: expected to finish within {timeout_ms} ms, gave up ({w}x{h} px)"
        raise RecognitionTimeout(msg)
    lines: list[list[_RawWord]] = []
    iterator = api.GetIterator()
    if iterator is None:
        return lines
    for word in iterate_level(iterator, RIL.WORD):
        if word.IsAtBeginningOf(RIL.TEXTLINE) or not lines:
            lines.append([])
        try:
            text = (word.GetUTF8Text(RIL.WORD) or "").strip()
        except RuntimeError:  # tesserocr's "No text returned" on an empty page
            continue
        bbox = word.BoundingBox(RIL.WORD)
        if text and bbox is not None:
            lines[-1].append((text, float(word.Confidence(RIL.WORD)) / 100.0, tuple(bbox)))
    api.Clear()
    return lines


def _map_box(xyxy: tuple[int, int, int, int], to_input: np.ndarray, w: int, h: int) -> Box:
    x0, y0, x1, y1 = xyxy
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], np.float64)
    pts = corners @ to_input[:2].T
    bx0 = int(np.clip(np.floor(pts[:, 0].min()), 0, w - 1))
    by0 = int(np.clip(np.floor(pts[:, 1].min()), 0, h - 1))
    bx1 = int(np.clip(np.ceil(pts[:, 0].max()), bx0 + 1, w))
    by1 = int(np.clip(np.ceil(pts[:, 1].max()), by0 + 1, h))
    return Box(bx0, by0, bx1 - bx0, by1 - by0)


def _map_line(raw: list[_RawWord], to_input: np.ndarray, w: int, h: int) -> Line:
    words = tuple(Word(t, c, _map_box(b, to_input, w, h)) for t, c, b in raw)
    x0 = min(wd.box.x for wd in words)
    y0 = min(wd.box.y for wd in words)
    x1 = max(wd.box.x + wd.box.width for wd in words)
    y1 = max(wd.box.y + wd.box.height for wd in words)
    return Line(
        " ".join(wd.text for wd in words),
        min(wd.confidence for wd in words),
        Box(x0, y0, x1 - x0, y1 - y0),
        words,
    )
