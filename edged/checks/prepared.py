"""A prepared reference: everything a comparison needs, computed once when it is stored.

:func:`prepare_reference` takes one or more good images of a part (same camera, same
size), registers them onto the first, normalises their lighting, and builds:

- the working-size geometry (``work_wh``) and the ROI at that size,
- the :class:`~edged.checks.align.RegistrationTemplate` (features, pyramid, design
  matrices), built from the mean image,
- one :class:`~edged.checks.variation.VariationModel` per compared channel (a single
  image gives ``std = 0``: the single-reference difference),
- and, lazily per set of thresholds, the uint8 limits a query is compared against.

:meth:`PreparedReference.arrays` / :meth:`PreparedReference.from_arrays` are what
the reference store persists.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edged.checks import _behaviors
from edged.checks._image import contract_problem, to_grey
from edged.checks._lighting import Lighting, fit_lighting
from edged.checks._lk import warp
from edged.checks._scale import resize_matrix, shrink, working_size
from edged.checks.align import (
    MOTION_MODELS,
    MotionModel,
    Registration,
    RegistrationTemplate,
    prepare_registration,
    register,
)
from edged.checks.variation import Limits, VariationModel, VariationTrainer, single
from edged.core.errors import InputError

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ReferenceParams:
    """What a reference is prepared for (changing these means preparing again).

    resolution: longest side of the working size, pixels (0 = full size).
    behaviors: compared channels (``L`` luma, ``V``, ``S``, ``H``; see ``_behaviors``).
    robust: train the variation model with median/MAD instead of mean/std.
    motion_model: how training images are registered onto the first one.
    colour: ``auto`` also trains the CIELAB a/b chroma of colour images (so queries
        can be compared in colour without preparing again); ``off`` only ``behaviors``.
    lighting: how training images' lighting is normalised onto the first one's
        (``field``: a smooth gain field plus an offset; ``global``: one gain/offset).
    """

    resolution: int = 1024
    behaviors: tuple[str, ...] = ("L",)
    robust: bool = False
    motion_model: MotionModel = "auto"
    colour: str = "auto"
    lighting: str = "field"

    def __post_init__(self) -> None:
        if self.resolution != 0 and not 64 <= self.resolution <= 16384:
            msg = f"resolution: expected 0 (full size) or 64..16384 pixels, got {self.resolution!r}"
            raise InputError(msg)
        if self.motion_model not in MOTION_MODELS:
            msg = f"motion model: expected one of {list(MOTION_MODELS)}, got {self.motion_model!r}"
            raise InputError(msg)
        if self.colour not in ("auto", "off"):
            msg = f"colour: expected 'auto' or 'off', got {self.colour!r}"
            raise InputError(msg)
        if self.lighting not in ("field", "global"):
            msg = f"lighting: expected 'field' or 'global', got {self.lighting!r}"
            raise InputError(msg)
        object.__setattr__(self, "behaviors", _behaviors.parse_behaviors(self.behaviors))

    def to_dict(self) -> dict[str, Any]:
        return {
            "resolution": self.resolution,
            "behaviors": "".join(self.behaviors),
            "robust": self.robust,
            "motion_model": self.motion_model,
            "colour": self.colour,
            "lighting": self.lighting,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceParams:
        # References stored before colour/lighting existed trained no chroma.
        return cls(
            resolution=int(d["resolution"]),
            behaviors=tuple(str(d["behaviors"])),
            robust=bool(d["robust"]),
            motion_model=d["motion_model"],
            colour=str(d.get("colour", "off")),
            lighting=str(d.get("lighting", "global")),
        )


@dataclass(frozen=True, slots=True, eq=False)
class PreparedReference:
    """A reference ready for :func:`edged.checks.difference.compare`.

    ``size_wh`` is the original image size, ``work_wh`` the working size; ``colour``
    whether the references were BGR; ``roi`` the ``(H, W)`` uint8 working-size mask
    (255 = inspected) or None; ``training`` one summary dict per training image.
    """

    params: ReferenceParams
    size_wh: tuple[int, int]
    work_wh: tuple[int, int]
    colour: bool
    registration: RegistrationTemplate
    channels: Mapping[str, VariationModel]
    roi: np.ndarray | None
    n_images: int
    training: tuple[Mapping[str, Any], ...] = ()
    _cache: dict[tuple[Any, ...], Limits] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def kind(self) -> str:
        """``"variation"`` when trained from 2+ images, else ``"single"``."""
        return "variation" if self.n_images >= 2 else "single"

    @property
    def scale(self) -> float:
        return self.work_wh[0] / self.size_wh[0]

    def limits(
        self,
        channel: str,
        *,
        abs_threshold: float,
        var_threshold: float,
        smooth_sigma: float,
        edge_tolerance_px: int,
        contrast_tolerance: float = 0.0,
    ) -> Limits:
        """The channel's limits for these settings (computed once, then cached)."""
        key = (
            channel,
            float(abs_threshold),
            float(var_threshold),
            float(smooth_sigma),
            int(edge_tolerance_px),
            float(contrast_tolerance),
        )
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        guide = None
        if channel in _behaviors.CHROMA and contrast_tolerance > 0:
            # Chroma is least reliable where the luma changes sharply (demosaicking
            # fringes, chroma subsampling): its tolerance follows the luma's contrast.
            model = self.channels[channel]
            h, w = model.shape
            guide = cv2.resize(self.channels["L"].mean, (w, h), interpolation=cv2.INTER_AREA)
        lim = self.channels[channel].limits(
            abs_threshold=abs_threshold,
            var_threshold=var_threshold,
            smooth_sigma=smooth_sigma,
            edge_tolerance_px=edge_tolerance_px,
            contrast_tolerance=contrast_tolerance,
            contrast_guide=guide,
        )
        with self._lock:
            if len(self._cache) >= 16:  # settings rarely change; bound the memory anyway
                self._cache.clear()
            self._cache[key] = lim
        return lim

    def mean_image(self) -> np.ndarray:
        """The mean luma at working size, ``(H, W)`` uint8 (what registration aligns to)."""
        return _u8(self.channels["L"].mean)

    # ------------------------------------------------------------------ persistence

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays worth persisting; :meth:`meta` holds the rest."""
        out: dict[str, np.ndarray] = {}
        for name, model in self.channels.items():
            out[f"{name}.mean"] = model.mean
            out[f"{name}.std"] = model.std
            out[f"{name}.count"] = model.count
        if self.roi is not None:
            out["roi"] = self.roi
        out.update({f"reg.{k}": v for k, v in self.registration.arrays().items()})
        return out

    def meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "params": self.params.to_dict(),
            "size_wh": list(self.size_wh),
            "work_wh": list(self.work_wh),
            "colour": self.colour,
            "n_images": self.n_images,
            "kind": self.kind,
            "robust": any(m.robust for m in self.channels.values()),
            "training": [dict(t) for t in self.training],
        }

    @classmethod
    def from_arrays(
        cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> PreparedReference:
        """Rebuild from :meth:`meta` and :meth:`arrays` (raises InputError when inconsistent)."""
        try:
            if int(meta["format"]) != FORMAT_VERSION:
                msg = (
                    f"prepared reference format: expected {FORMAT_VERSION}, got {meta['format']!r}"
                )
                raise InputError(msg)
            params = ReferenceParams.from_dict(meta["params"])
            n = int(meta["n_images"])
            channels = {}
            colour = bool(meta["colour"])
            for name in trained_channels(params.behaviors, chroma=chroma(params, colour=colour)):
                channels[name] = VariationModel(
                    mean=np.asarray(arrays[f"{name}.mean"], np.float32),
                    std=np.asarray(arrays[f"{name}.std"], np.float32),
                    count=np.asarray(arrays[f"{name}.count"], np.float32),
                    n=n,
                    robust=bool(meta.get("robust", False)),
                )
            roi = np.asarray(arrays["roi"], np.uint8) if "roi" in arrays else None
            tpl = prepare_registration(
                _u8(channels["L"].mean),
                roi=roi,
                keypoints_xy=np.asarray(arrays["reg.keypoints_xy"], np.float32),
                descriptors=np.asarray(arrays["reg.descriptors"], np.uint8),
            )
            work_wh = (int(meta["work_wh"][0]), int(meta["work_wh"][1]))
            for name, model in channels.items():
                cw, chh = _behaviors.chroma_size(work_wh) if name in _behaviors.CHROMA else work_wh
                if model.shape != (chh, cw):
                    want = (chh, cw)
                    msg = f"channel {name}: expected shape {want}, got {model.shape}"
                    raise InputError(msg)
            return cls(
                params=params,
                size_wh=(int(meta["size_wh"][0]), int(meta["size_wh"][1])),
                work_wh=work_wh,
                colour=bool(meta["colour"]),
                registration=tpl,
                channels=channels,
                roi=roi,
                n_images=n,
                training=tuple(meta.get("training", ())),
            )
        except KeyError as exc:
            msg = f"prepared reference: expected field {exc.args[0]!r}, missing"
            raise InputError(msg) from exc


def _u8(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return out


def chroma(params: ReferenceParams, *, colour: bool) -> bool:
    """Whether a reference of these params trains the a/b chroma (colour ``auto``)."""
    return colour and params.colour == "auto"


def trained_channels(behaviors: tuple[str, ...], *, chroma: bool = False) -> tuple[str, ...]:
    """Channels a reference trains: always luma (registration aligns on it), then the
    channels of the compared behaviours, then (``chroma``) the half-resolution CIELAB
    a/b pair (:data:`edged.checks._behaviors.CHROMA`)."""
    names = _behaviors.channel_names(behaviors)
    extra = _behaviors.CHROMA if chroma else ()
    return ("L", *(n for n in names if n != "L"), *extra)


def work_channels(
    image: np.ndarray, work_wh: tuple[int, int], names: tuple[str, ...]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(working-size luma, working-size channel images) of an original-size image."""
    grey = shrink(to_grey(image), work_wh)
    colour = ("S", "a", "b", *_behaviors.CHROMA)
    if names == ("L",) or (image.ndim == 2 and not any(n in colour for n in names)):
        return grey, dict.fromkeys(names, grey)
    plain = tuple(n for n in names if n not in _behaviors.CHROMA)
    out: dict[str, np.ndarray] = {n: grey for n in plain if n == "L"}
    rest = tuple(n for n in plain if n != "L")
    if rest:
        out.update(_behaviors.extract(shrink(image, work_wh), rest, grey))
    if len(plain) < len(names):
        if image.ndim != 3:
            msg = "colour comparison: expected a (H, W, 3) BGR image, got grey"
            raise InputError(msg)
        out.update(_behaviors.chroma(image, _behaviors.chroma_size(work_wh)))
    return grey, out


def roi_at(roi: np.ndarray, size_wh: tuple[int, int], work_wh: tuple[int, int]) -> np.ndarray:
    """An original-size ROI mask (non-zero = inspect) at working size, 255/0.

    A working pixel is inspected only when all of the original pixels it covers are.
    """
    if roi.ndim != 2 or (roi.shape[1], roi.shape[0]) != size_wh:
        msg = (
            f"roi mask: expected a (H, W) = {(size_wh[1], size_wh[0])} mask, got shape {roi.shape}"
        )
        raise InputError(msg)
    binary = np.where(roi > 0, 255, 0).astype(np.uint8)
    small = shrink(binary, work_wh)
    return np.where(small >= 250, 255, 0).astype(np.uint8)


def prepare_reference(
    images: Sequence[np.ndarray],
    *,
    params: ReferenceParams | None = None,
    roi: np.ndarray | None = None,
) -> PreparedReference:
    """Prepare one or more good images of a part for comparison.

    images: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR, all the same size and
        kind; the first is the master the others are registered onto.
    roi: optional ``(H, W)`` uint8 mask at the images' size, non-zero = inspect.

    Raises InputError when the images disagree in size or kind, or one of them does not
    register onto the first (the message names it and says why).
    """
    params = params or ReferenceParams()
    if not images:
        msg = "reference images: expected at least one image, got none"
        raise InputError(msg)
    first = images[0]
    for i, img in enumerate(images):
        check_image(img, f"reference image {i}")
        if img.shape != first.shape:
            msg = (
                f"reference image {i}: expected the shape of image 0 {first.shape}, got {img.shape}"
            )
            raise InputError(msg)
    colour = first.ndim == 3
    if _behaviors.needs_colour(params.behaviors) and not colour:
        msg = (
            f"behaviors {''.join(params.behaviors)!r} compare colour: "
            "expected BGR reference images, got grey"
        )
        raise InputError(msg)
    size_wh = (first.shape[1], first.shape[0])
    work_wh = working_size(size_wh, params.resolution)
    work_roi = roi_at(roi, size_wh, work_wh) if roi is not None else None
    names = trained_channels(params.behaviors, chroma=chroma(params, colour=colour))

    master_grey, master_ch = work_channels(first, work_wh, names)
    if len(images) == 1:
        # One image is its own model (std 0) and its own registration template: the
        # trainer and the mean's rounding would only copy it (LTU prepares one per
        # request).
        channels = {n: single(master_ch[n]) for n in names}
        training: list[dict[str, Any]] = [{"image": 0, "master": True}]
        tpl = prepare_registration(master_grey, roi=work_roi)
    else:
        channels, training = _train(
            images, params, names, work_wh, work_roi, master_grey, master_ch
        )
        tpl = prepare_registration(_u8(channels["L"].mean), roi=work_roi)
    return PreparedReference(
        params=params,
        size_wh=size_wh,
        work_wh=work_wh,
        colour=colour,
        registration=tpl,
        channels=channels,
        roi=work_roi,
        n_images=len(images),
        training=tuple(training),
    )


def _train(
    images: Sequence[np.ndarray],
    params: ReferenceParams,
    names: tuple[str, ...],
    work_wh: tuple[int, int],
    work_roi: np.ndarray | None,
    master_grey: np.ndarray,
    master_ch: Mapping[str, np.ndarray],
) -> tuple[dict[str, VariationModel], list[dict[str, Any]]]:
    """Register images 1.. onto the master, normalise their lighting, train the models."""
    trainers = {n: VariationTrainer(master_ch[n].shape[:2], robust=params.robust) for n in names}
    for n in names:
        trainers[n].add(master_ch[n])
    training: list[dict[str, Any]] = [{"image": 0, "master": True}]
    tpl0 = prepare_registration(master_grey, roi=work_roi)
    for i, img in enumerate(images[1:], start=1):
        grey, chans = work_channels(img, work_wh, names)
        reg = register(tpl0, grey, model=params.motion_model)
        if not reg.ok:
            msg = f"reference image {i} does not register onto image 0: {reg.reason}"
            raise InputError(msg)
        warped, valid = _into_reference(
            chans, reg, work_wh, master_ch["L"], grey, field=params.lighting == "field"
        )
        for n in names:
            v = valid
            if n in _behaviors.CHROMA:
                v = cv2.resize(valid, warped[n].shape[::-1], interpolation=cv2.INTER_NEAREST)
            trainers[n].add(warped[n], v)
        training.append({"image": i, **reg.to_dict()})
    channels = {n: t.model() for n, t in trainers.items()}
    return channels, training


def _into_reference(
    chans: Mapping[str, np.ndarray],
    reg: Registration,
    work_wh: tuple[int, int],
    master: np.ndarray,
    grey: np.ndarray,
    *,
    field: bool,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Warp working-size channels into the reference frame; normalise lighting (float32)
    with one gain/offset or (``field``) the smooth gain field fitted against ``master``."""
    m = reg.ref_to_query
    any_img = next(iter(chans.values()))
    ones = np.full(any_img.shape[:2], 255, np.uint8)
    valid = warp(
        ones, m, work_wh, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, border=cv2.BORDER_CONSTANT
    )
    valid = cv2.erode(valid, np.ones((3, 3), np.uint8))
    lighting = Lighting.uniform(reg.gain, reg.offset)
    if field:
        lighting = fit_lighting(
            master, warp(grey, m, work_wh), valid, gain=reg.gain, offset=reg.offset
        )
    gain_field = lighting.field(work_wh) if lighting.spread > 0 else np.float32(lighting.gain)
    out: dict[str, np.ndarray] = {}
    for name, img in chans.items():
        if name in _behaviors.CHROMA:  # half resolution, no lighting
            half = _behaviors.chroma_size(work_wh)
            q_half = (img.shape[1], img.shape[0])
            m_half = (
                resize_matrix(grey.shape[::-1], q_half)
                @ m
                @ np.linalg.inv(resize_matrix(work_wh, half))
            )
            out[name] = np.clip(warp(img.astype(np.float32), m_half, half), 0, 255)
            continue
        w = warp(img.astype(np.float32), m, work_wh)
        if name in _behaviors.PHOTOMETRIC and abs(lighting.gain) > 1e-3:
            w = (w - np.float32(lighting.offset)) / gain_field
        out[name] = np.clip(w, 0, 255)
    return out, valid


def check_image(img: Any, what: str) -> None:
    problem = contract_problem(img)
    if problem is not None:
        msg = f"{what}: {problem}"
        raise InputError(msg)
    if min(img.shape[:2]) < 16:
        msg = f"{what}: expected at least 16x16 pixels, got {img.shape[1]}x{img.shape[0]}"
        raise InputError(msg)
