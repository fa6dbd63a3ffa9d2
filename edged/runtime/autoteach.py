"""Demo aid: a synthetic line with ``auto_teach: N`` teaches itself N good parts.

Only when the camera's recipe needs references and none are stored for it yet;
an existing (e.g. hand-taught) reference is never replaced. The good parts are
rendered with the line's own nuisance and go through the same pixel-format
decode as live frames, so the reference looks like what the camera delivers.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from edged.config import CameraConfig, Settings
from edged.core.frames import Frame
from edged.imaging import pixfmt
from edged.references import ReferenceStore
from edged.sources.synthetic import SyntheticLine

log = logging.getLogger("edged.autoteach")

# Frame numbers for taught parts, far from the ones the line emits.
_TEACH_SEQ0 = 1_000_000_000


def good_images(camera: str, cfg: CameraConfig, count: int) -> list[np.ndarray]:
    """``count`` defect-free frames of the synthetic line, decoded like live frames."""
    assert cfg.synthetic is not None
    line = SyntheticLine(cfg.synthetic)
    images = []
    for i in range(count):
        rendered = line.render(_TEACH_SEQ0 + i, defect=False)
        h, w = rendered.image.shape[:2]
        frame = Frame(
            data=line.to_pixel_format(rendered.image),
            pixel_format=cfg.synthetic.pixel_format,
            width=w,
            height=h,
            camera=camera,
            seq=_TEACH_SEQ0 + i,
            host_ts_ns=time.time_ns(),
        )
        images.append(pixfmt.decode(frame, demosaic=cfg.demosaic, bayer_pattern=cfg.bayer_pattern))
    return images


def auto_teach(
    store: ReferenceStore, camera: str, cfg: CameraConfig, *, needs_reference: bool
) -> bool:
    """Teach the line's good parts when configured and nothing is stored; True if taught."""
    count = cfg.synthetic.auto_teach if cfg.source == "synthetic" and cfg.synthetic else 0
    if count == 0 or not needs_reference:
        return False
    if store.current(cfg.recipe, camera) is not None:
        return False
    info = store.teach(
        cfg.recipe, camera, good_images(camera, cfg, count), source="auto_teach",
        note=f"auto_teach: {count} good synthetic parts",
    )  # fmt: skip
    log.info(
        "camera %s: taught %d good synthetic part(s) as references for recipe %s (version %s)",
        camera, count, cfg.recipe, info,
    )  # fmt: skip
    return True


HTTP_CAMERA = "http"
"""The camera id of HTTP analyze requests (and their references)."""


def auto_teach_http(store: ReferenceStore, settings: Settings, *, needs_reference: bool) -> bool:
    """Demo aid: HTTP analyze requests get the good parts of a self-teaching line.

    When the HTTP default recipe needs references, none are stored for camera
    ``http``, and a synthetic line with ``auto_teach`` runs that recipe, its good parts
    are taught for ``http`` too, so ``analyze_image`` with a frame of that line gives
    a real verdict. True if taught.
    """
    recipe = settings.http_recipe
    if recipe is None or not needs_reference or not settings.http.enabled:
        return False
    if store.current(recipe, HTTP_CAMERA) is not None:
        return False
    for camera, cfg in settings.cameras.items():
        syn = cfg.synthetic if cfg.source == "synthetic" else None
        if not cfg.enabled or cfg.recipe != recipe or syn is None or syn.auto_teach == 0:
            continue
        info = store.teach(
            recipe, HTTP_CAMERA, good_images(camera, cfg, syn.auto_teach), source="auto_teach",
            note=f"auto_teach: {syn.auto_teach} good synthetic parts of camera {camera}",
        )  # fmt: skip
        log.info(
            "HTTP analyze (camera http): taught %d good part(s) of camera %s as references "
            "for recipe %s (version %s)",
            syn.auto_teach, camera, recipe, info,
        )  # fmt: skip
        return True
    return False
