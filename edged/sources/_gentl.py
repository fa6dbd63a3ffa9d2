"""GenTL producer files and device selection, shared by the acquisition child and
discovery. Nothing here opens a device."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCESS_STATUS = {
    0: "unknown",
    1: "available",  # DEVICE_ACCESS_STATUS_READWRITE
    2: "read-only",
    3: "no access",
    4: "busy",
    5: "open (read/write)",
    6: "open (read-only)",
}


class SelectionError(Exception):
    """No device (or no producer) matches the camera's selection."""


def resolve_cti(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The producer files to load: ``paths``, or every ``.cti`` on
    ``GENICAM_GENTL64_PATH`` when none are given. Raises SelectionError."""
    if paths:
        out = [Path(p) for p in paths]
        missing = [str(p) for p in out if not p.is_file()]
        if missing:
            msg = f"GenTL producer: expected existing .cti files, got missing {missing}"
            raise SelectionError(msg)
        return out
    found: list[Path] = []
    for folder in os.environ.get("GENICAM_GENTL64_PATH", "").split(os.pathsep):
        if folder and Path(folder).is_dir():
            found.extend(sorted(Path(folder).glob("*.cti")))
    if not found:
        msg = (
            "GenTL producer: expected 'cti' files in the camera's genicam section or "
            "GENICAM_GENTL64_PATH, got none"
        )
        raise SelectionError(msg)
    return found


@dataclass(frozen=True, slots=True)
class GenicamDevice:
    """One GenICam device as its producer lists it."""

    vendor: str
    model: str
    serial: str
    user_name: str
    id: str
    tl_type: str
    access: str
    cti: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "vendor": self.vendor,
            "model": self.model,
            "serial": self.serial,
            "user_name": self.user_name,
            "id": self.id,
            "tl_type": self.tl_type,
            "access": self.access,
            "cti": self.cti,
        }

    def label(self) -> str:
        name = f" {self.user_name!r}" if self.user_name else ""
        return f"{self.vendor} {self.model} serial {self.serial}{name}".strip()


def describe(info: Any, cti: str = "") -> GenicamDevice:
    """A GenicamDevice from a harvesters DeviceInfo (missing fields are '')."""
    props: dict[str, Any] = dict(getattr(info, "property_dict", {}) or {})

    def text(key: str) -> str:
        value = props.get(key)
        return "" if value is None else str(value)

    status = props.get("access_status")
    access = ACCESS_STATUS.get(int(status), str(status)) if status is not None else "unknown"
    return GenicamDevice(
        vendor=text("vendor"),
        model=text("model"),
        serial=text("serial_number"),
        user_name=text("user_defined_name"),
        id=text("id_"),
        tl_type=text("tl_type"),
        access=access,
        cti=cti,
    )


def select(
    devices: Sequence[GenicamDevice],
    *,
    serial: str | None,
    user_name: str | None,
    model: str | None,
    index: int,
) -> int:
    """Index into ``devices`` of the camera the selection names.

    ``serial`` and ``user_name`` identify one device; ``model`` + ``index`` picks the
    index-th device of that model (in the producer's order); with none of them,
    ``index`` counts all devices. Raises SelectionError listing what was found.
    """
    candidates = list(range(len(devices)))
    wanted = []
    if serial is not None:
        candidates = [i for i in candidates if devices[i].serial == serial]
        wanted.append(f"serial {serial!r}")
    if user_name is not None:
        candidates = [i for i in candidates if devices[i].user_name == user_name]
        wanted.append(f"user name {user_name!r}")
    if model is not None:
        candidates = [i for i in candidates if devices[i].model == model]
        wanted.append(f"model {model!r}")
    if index < len(candidates):
        return candidates[index]
    if index:
        wanted.append(f"index {index} ({len(candidates)} matched)")
    found = "; ".join(d.label() for d in devices) or "none"
    what = ", ".join(wanted) or "any device"
    msg = f"expected a GenICam device with {what}, got {len(devices)} device(s): {found}"
    raise SelectionError(msg)
