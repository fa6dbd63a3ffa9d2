"""List the cameras a technician can put in the config (``edged cameras``).

* :func:`list_genicam` — devices each GenTL producer (``.cti``) reports, with vendor,
  model, serial, user-defined name and access status. It runs in a fresh spawned
  process each call: a second Harvester on the same ``.cti`` in one process sees no
  devices, and the producer's native state must not stay in the daemon.
* :func:`list_opencv` — V4L2 nodes ``/dev/video*`` with their driver name, the
  stable ``/dev/v4l/by-id`` and ``by-path`` links that point at them, and whether
  the node captures video (UVC cameras also create metadata-only nodes).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import multiprocessing as mp
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edged.core.errors import SourceError
from edged.sources._gentl import GenicamDevice, SelectionError, resolve_cti

__all__ = [
    "Discovery",
    "GenicamDevice",
    "OpenCVDevice",
    "discover",
    "list_genicam",
    "list_opencv",
]

_VIDIOC_QUERYCAP = 0x80685600  # _IOR('V', 0, struct v4l2_capability), 104 bytes
_CAP_VIDEO_CAPTURE = 0x00000001
_CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
_CAP_DEVICE_CAPS = 0x80000000


@dataclass(frozen=True, slots=True)
class OpenCVDevice:
    """A V4L2 video node.

    Attributes:
        path: the node, e.g. ``/dev/video0``.
        index: the OpenCV index (the number in ``videoN``).
        name: the driver's name for it (sysfs), e.g. ``"HD Pro Webcam C920"``.
        by_id: stable ``/dev/v4l/by-id/...`` links to it (use these in the config).
        by_path: ``/dev/v4l/by-path/...`` links (stable per USB port).
        capture: True for a video capture node, False for metadata/output nodes,
            None when it could not be queried (no permission, not a V4L2 device).
        driver: the kernel driver (``uvcvideo`` ...) when queried.
        bus: the bus info (``usb-0000:00:14.0-1``) when queried.
    """

    path: str
    index: int
    name: str = ""
    by_id: tuple[str, ...] = ()
    by_path: tuple[str, ...] = ()
    capture: bool | None = None
    driver: str = ""
    bus: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "index": self.index,
            "name": self.name,
            "by_id": list(self.by_id),
            "by_path": list(self.by_path),
            "capture": self.capture,
            "driver": self.driver,
            "bus": self.bus,
        }


@dataclass(frozen=True, slots=True)
class Discovery:
    """Everything found, plus what could not be searched (per producer)."""

    genicam: tuple[GenicamDevice, ...] = ()
    opencv: tuple[OpenCVDevice, ...] = ()
    errors: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "genicam": [d.to_dict() for d in self.genicam],
            "opencv": [d.to_dict() for d in self.opencv],
            "errors": list(self.errors),
        }

    def to_text(self) -> str:
        """A table per kind, with the config line that selects each device."""
        lines = [f"GenICam devices ({len(self.genicam)}):"]
        for d in self.genicam:
            lines.append(
                f"  {d.vendor} {d.model}  serial={d.serial!r}  user_name={d.user_name!r}  "
                f"access={d.access}  cti={d.cti}"
            )
            lines.append(f"      genicam: {{cti: [{d.cti}], serial: {d.serial!r}}}")
        lines.append(f"OpenCV devices ({len(self.opencv)}):")
        for c in self.opencv:
            kind = {True: "capture", False: "no capture (metadata)", None: "unknown"}[c.capture]
            lines.append(f"  {c.path}  {c.name or '?'}  [{kind}]")
            for link in c.by_id:
                lines.append(f"      opencv: {{device: {link}}}")
        lines += [f"error: {e}" for e in self.errors]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- GenICam


def list_genicam(
    cti_files: Sequence[str | os.PathLike[str]] = (), *, timeout_s: float = 30.0
) -> list[GenicamDevice]:
    """GenICam devices of ``cti_files`` (default: every ``.cti`` on
    ``GENICAM_GENTL64_PATH``). Blocks up to ``timeout_s``; call it from a thread in
    async code. Raises SourceError when a producer is missing or does not answer."""
    try:
        paths = [str(p) for p in resolve_cti(list(cti_files))]
    except SelectionError as exc:
        raise SourceError(str(exc)) from exc
    ctx = mp.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        future = pool.submit(_list_in_child, paths)
        try:
            rows = future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError as exc:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.kill()
            msg = f"GenTL producers {paths}: expected a device list within {timeout_s:g} s"
            raise SourceError(msg) from exc
        except concurrent.futures.process.BrokenProcessPool as exc:
            msg = f"GenTL producers {paths}: the discovery process crashed"
            raise SourceError(msg) from exc
    out: list[GenicamDevice] = []
    for row in rows:
        if "error" in row:
            raise SourceError(str(row["error"]))
        out.append(GenicamDevice(**row))
    return out


def _list_in_child(paths: list[str]) -> list[dict[str, str]]:
    """Runs in the spawned process: one Harvester per producer file."""
    from harvesters.core import Harvester

    from edged.sources._gentl import describe

    rows: list[dict[str, str]] = []
    for path in paths:
        h = Harvester()
        try:
            h.add_file(path)
            h.update()
            rows.extend(describe(info, path).to_dict() for info in h.device_info_list)
        except Exception as exc:
            return [{"error": f"GenTL producer {path!r}: cannot list devices: {exc}"}]
        finally:
            with contextlib.suppress(Exception):
                h.reset()
    return rows


# --------------------------------------------------------------------------- OpenCV


def list_opencv(
    dev_dir: str | os.PathLike[str] = "/dev",
    sys_dir: str | os.PathLike[str] = "/sys/class/video4linux",
    *,
    query: bool = True,
) -> list[OpenCVDevice]:
    """V4L2 nodes under ``dev_dir`` with their names and stable links.

    ``query`` asks each node for its capabilities (``VIDIOC_QUERYCAP``: opens the
    node without starting a stream). Missing folders give an empty list.
    """
    dev = Path(dev_dir)
    links_id = _links(dev / "v4l" / "by-id")
    links_path = _links(dev / "v4l" / "by-path")
    out = []
    nodes = sorted(dev.glob("video*"), key=lambda p: _index(p.name))
    for node in nodes:
        index = _index(node.name)
        if index < 0:
            continue
        name = _read_text(Path(sys_dir) / node.name / "name")
        capture, driver, bus = _querycap(node) if query else (None, "", "")
        real = str(node.resolve())
        out.append(
            OpenCVDevice(
                path=str(node),
                index=index,
                name=name,
                by_id=tuple(sorted(p for p, t in links_id.items() if t == real)),
                by_path=tuple(sorted(p for p, t in links_path.items() if t == real)),
                capture=capture,
                driver=driver,
                bus=bus,
            )
        )
    return out


def _index(name: str) -> int:
    m = re.fullmatch(r"video(\d+)", name)
    return int(m.group(1)) if m else -1


def _links(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {str(p): str(p.resolve()) for p in sorted(folder.iterdir()) if p.is_symlink()}


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _querycap(node: Path) -> tuple[bool | None, str, str]:
    try:
        fd = os.open(node, os.O_RDWR | os.O_NONBLOCK)
    except OSError:
        return None, "", ""
    try:
        buf = bytearray(104)
        fcntl.ioctl(fd, _VIDIOC_QUERYCAP, buf)
    except OSError:
        return None, "", ""
    finally:
        os.close(fd)
    driver, _card, bus = (
        s.split(b"\0", 1)[0].decode(errors="replace") for s in struct.unpack_from("16s32s32s", buf)
    )
    caps, device_caps = struct.unpack_from("<II", buf, 84)
    if caps & _CAP_DEVICE_CAPS:
        caps = device_caps
    return bool(caps & (_CAP_VIDEO_CAPTURE | _CAP_VIDEO_CAPTURE_MPLANE)), driver, bus


# --------------------------------------------------------------------------- both


def discover(
    cti_files: Sequence[str | os.PathLike[str]] = (),
    *,
    genicam: bool = True,
    opencv: bool = True,
    timeout_s: float = 30.0,
) -> Discovery:
    """GenICam and OpenCV devices; a producer that fails is reported in ``errors``."""
    errors: list[str] = []
    gen: list[GenicamDevice] = []
    if genicam:
        try:
            gen = list_genicam(cti_files, timeout_s=timeout_s)
        except SourceError as exc:
            errors.append(str(exc))
    cams = list_opencv() if opencv else []
    return Discovery(tuple(gen), tuple(cams), tuple(errors))
