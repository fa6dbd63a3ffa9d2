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

from edged.config import CameraConfig
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
