"""Turn an analyze request's pixels into an image, with limits checked first.

Three inputs: an encoded file (JPEG/PNG, size read from the header before any
decoding), raw pixels in the body (``H·W·3`` BGR, ``H·W`` grey, or ``H·W`` Bayer),
and raw pixels in a POSIX shared-memory block named by a local client (opened
read-only, copied out, never written). Every function returns
``(image, pixel_format)`` with ``image`` ``(H, W)`` uint8 grey or ``(H, W, 3)``
uint8 BGR, or raises an EdgedError saying what was expected and what came.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import cv2
import numpy as np

from edged.core.errors import InputError, NotFoundError, TooLargeError
from edged.http._errors import ForbiddenError
from edged.http._imagehead import looks_complete, read_head
from edged.imaging.pixfmt import BayerPattern, debayer
from edged.imaging.png import decode_png

SHM_DIR = Path("/dev/shm")
"""Where Linux exposes POSIX shared memory (``shm_open`` names)."""

_SHM_NAME_RE = re.compile(r"^/?(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]{0,250})$")


def check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    """Raise TooLargeError when ``width × height`` exceeds ``max_pixels``."""
    if width * height > max_pixels:
        msg = (
            f"{what}: expected at most {max_pixels} pixels (http.max_pixels), "
            f"got {width}×{height} = {width * height}"
        )
        raise TooLargeError(msg)


def decode_encoded(data: bytes | bytearray, *, max_pixels: int) -> tuple[np.ndarray, str]:
    """Decode a JPEG or PNG file. Grey files give ``(H, W)``, colour ones ``(H, W, 3)`` BGR.

    The size comes from the header and is checked against ``max_pixels`` before
    decoding (413). Pixels are taken as stored: EXIF orientation is ignored, 16-bit
    PNGs are scaled to 8 bits, alpha is dropped.
    """
    head = read_head(data)
    check_pixels(head.width, head.height, max_pixels, f"{head.format} image")
    if not looks_complete(data, head):
        end = "end-of-image marker FF D9" if head.format == "JPEG" else "IEND chunk"
        msg = f"{head.format}: expected a complete file ending with its {end}, got a truncated one"
        raise InputError(msg)
    if head.format == "PNG":
        # Exactly what OpenCV returns, about twice as fast for the PNGs it takes (8-bit grey
        # or RGB, filters None/Sub/Up); None for the rest, decoded below.
        fast = decode_png(data)
        if fast is not None and fast.shape[:2] == (head.height, head.width):
            return fast, head.format
    flags = cv2.IMREAD_GRAYSCALE if head.grey else cv2.IMREAD_COLOR
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as exc:
        msg = f"{head.format}: expected decodable image data, got data OpenCV rejects ({exc})"
        raise InputError(msg) from exc
    if image is None:
        msg = (
            f"{head.format}: expected decodable image data, got {len(data)} bytes "
            "OpenCV cannot decode (corrupt or truncated)"
        )
        raise InputError(msg)
    if image.shape[:2] != (head.height, head.width):
        msg = (
            f"{head.format}: expected the {head.width}×{head.height} its header claims, "
            f"got {image.shape[1]}×{image.shape[0]} decoded"
        )
        raise InputError(msg)
    return image, head.format


def decode_raw(
    data: bytes | bytearray, *, width: int, height: int, bayer: BayerPattern | None
) -> tuple[np.ndarray, str]:
    """Raw pixels: ``H·W·3`` bytes BGR or ``H·W`` bytes grey; with ``bayer`` (PFNC
    pattern, e.g. ``"RG"``) ``H·W`` bytes of Bayer mosaic, debayered to BGR.

    The returned array may be a read-only view of ``data`` (checks never write).
    """
    grey, colour = width * height, width * height * 3
    n = len(data)
    if bayer is not None:
        if n != grey:
            msg = (
                f"raw Bayer{bayer}8 body for {width}×{height}: expected {grey} bytes (H·W), got {n}"
            )
            raise InputError(msg)
        mosaic = np.frombuffer(data, np.uint8).reshape(height, width)
        return debayer(mosaic, bayer), f"Bayer{bayer}8"
    if n == colour:
        return np.frombuffer(data, np.uint8).reshape(height, width, 3), "BGR8"
    if n == grey:
        return np.frombuffer(data, np.uint8).reshape(height, width), "Mono8"
    msg = (
        f"raw body for {width}×{height}: expected {colour} bytes (H·W·3 BGR) or "
        f"{grey} bytes (H·W grey), got {n}"
    )
    raise InputError(msg)


def shm_path(name: str, *, shm_dir: Path = SHM_DIR) -> Path:
    """The file behind POSIX shared-memory ``name`` (``psm_ab12`` or ``/psm_ab12``).

    Names are one path component of letters, digits, ``_ . -`` (not starting with
    a dot), at most 251 characters; anything else is a 400.
    """
    m = _SHM_NAME_RE.match(name)
    if m is None:
        msg = (
            "name: expected a POSIX shared-memory name (letters, digits, '_', '.', '-'; "
            f"optionally one leading '/'), got {name!r}"
        )
        raise InputError(msg)
    return shm_dir / m["name"]


def read_shared_memory(
    name: str,
    *,
    width: int,
    height: int,
    bayer: BayerPattern | None,
    shm_dir: Path = SHM_DIR,
) -> tuple[np.ndarray, str]:
    """Copy an image out of shared-memory block ``name`` (opened read-only, never written).

    The block must hold exactly the image, as the PEKAT SDK writes NumPy images:
    ``H·W·3`` bytes BGR or ``H·W`` bytes grey (Bayer with ``bayer``). Any other size
    is a 400 (a wrong width would otherwise read as a silently sheared image); a
    missing block is a 404.
    """
    path = shm_path(name, shm_dir=shm_dir)
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        msg = f"name: expected an existing shared-memory block, got {name!r} (no such block)"
        raise NotFoundError(msg) from exc
    except PermissionError as exc:
        msg = f"name: shared-memory block {name!r} is not readable by edged"
        raise ForbiddenError(msg) from exc
    except OSError as exc:
        reason = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        msg = f"name: expected a shared-memory block, got {name!r} ({reason})"
        raise InputError(msg) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            msg = f"name: expected a shared-memory block, got {name!r} (not a regular file)"
            raise InputError(msg)
        size = st.st_size
        grey, colour = width * height, width * height * 3
        allowed = (grey,) if bayer is not None else (colour, grey)
        if size not in allowed:
            wanted = f"{grey} (H·W)" if bayer else f"{colour} (H·W·3 BGR) or {grey} (H·W grey)"
            msg = (
                f"shared-memory block {name!r} for {width}×{height}: expected "
                f"{wanted} bytes, got {size}"
            )
            raise InputError(msg)
        data = _read_exactly(fd, size, name)
    finally:
        os.close(fd)
    return decode_raw(data, width=width, height=height, bayer=bayer)


def _read_exactly(fd: int, size: int, name: str) -> bytearray:
    """``size`` bytes from offset 0 of ``fd`` with pread (a bounded copy: never a
    mapping, so a block truncated by its owner meanwhile is a short read and a 400,
    not a SIGBUS that kills edged)."""
    buf = bytearray(size)
    view = memoryview(buf)
    done = 0
    while done < size:
        try:
            n = os.preadv(fd, [view[done:]], done)
        except OSError as exc:
            msg = f"shared-memory block {name!r}: read failed after {done} bytes ({exc.strerror})"
            raise InputError(msg) from exc
        if n == 0:
            msg = (
                f"shared-memory block {name!r}: expected {size} bytes, got {done} (the block "
                "was truncated while edged read it)"
            )
            raise InputError(msg)
        done += n
    if os.fstat(fd).st_size != size:
        msg = f"shared-memory block {name!r}: its size changed while edged read it"
        raise InputError(msg)
    return buf
