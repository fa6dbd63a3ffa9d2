"""``edged teach``: store good reference images for a recipe and camera, or manage them.

    edged teach --config FILE --recipe NAME --camera ID IMAGE|DIR...   # new version
    edged teach --config FILE --recipe NAME --camera ID --list        # versions
    edged teach --config FILE --recipe NAME --camera ID --rollback [VERSION]
    edged teach --config FILE --recipe NAME --camera ID --delete VERSION|all

Images are taken in the order given (folders sorted by name); the first is the
master the others are registered onto. Two or more images train a variation model.
``--roi MASK`` gives a mask the size of the images (non-zero = inspected). The
reference is prepared with the recipe's ``difference`` options and written
atomically under ``references_dir``; a running daemon picks it up at its next frame.

Exit status: 0 done, 1 the images or the request were refused (the reason is
printed), 2 the configuration is unusable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from edged.config import RESERVED_CAMERA_IDS
from edged.core.errors import ConfigError, EdgedError
from edged.imaging.imagefiles import expand_image_paths, read_image_file


def add_teach_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``teach`` subcommand to an ``edged`` subparser set."""
    p = sub.add_parser(
        "teach",
        help="store good reference images for a recipe and camera (or list/roll back/delete)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    configure_parser(p)


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="*", type=Path, help="good images or folders of them")
    p.add_argument("--config", "-c", required=True, type=Path, help="YAML config file")
    p.add_argument("--recipe", required=True, help="recipe name from the config")
    p.add_argument(
        "--camera",
        required=True,
        help="camera id from the config, or http (HTTP analyze requests) or offline "
        "(edged analyze)",
    )
    p.add_argument("--roi", type=Path, help="mask image: non-zero = inspected")
    p.add_argument("--note", default="", help="free text stored in the manifest")
    p.add_argument("--by", dest="created_by", help="who teaches (default: user@host)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list the stored versions")
    action.add_argument(
        "--rollback",
        nargs="?",
        const=-1,
        type=int,
        metavar="VERSION",
        help="make VERSION (default: the previous one) current",
    )
    action.add_argument("--delete", metavar="VERSION|all", help="delete a version, or all")


def cmd_teach(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run ``edged teach`` with parsed arguments; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    from edged.recipes.validate import load_checked_settings
    from edged.references import ReferenceStore, parse_version

    try:
        settings = load_checked_settings(args.config)
    except ConfigError as exc:
        print(
            f"edged: teach: invalid config {args.config}: " + "; ".join(str(exc).splitlines()),
            file=err,
        )
        return 2
    if args.recipe not in settings.recipes:
        known = sorted(settings.recipes)
        print(f"edged: teach: --recipe: expected one of {known}, got {args.recipe!r}", file=err)
        return 2
    if args.camera not in settings.cameras and args.camera not in RESERVED_CAMERA_IDS:
        known = sorted({*settings.cameras, *RESERVED_CAMERA_IDS})
        print(f"edged: teach: --camera: expected one of {known}, got {args.camera!r}", file=err)
        return 2
    store = ReferenceStore(settings.references_dir, recipes=settings.recipes)
    try:
        if args.list:
            infos = store.versions(args.recipe, args.camera)
            if args.json:
                print(json.dumps([i.to_dict() for i in infos]), file=out)
            else:
                for info in infos:
                    print(f"{info}  created {info.created} by {info.created_by}", file=out)
                if not infos:
                    print(f"no reference stored for {args.recipe}/{args.camera}", file=out)
            return 0
        if args.rollback is not None:
            version = None if args.rollback < 0 else args.rollback
            store.rollback(args.recipe, args.camera, version)
            current = store.current(args.recipe, args.camera)
            assert current is not None
            text = json.dumps(current.to_dict()) if args.json else f"rolled back: {current}"
            print(text, file=out)
            return 0
        if args.delete is not None:
            target = None if args.delete == "all" else parse_version(args.delete)
            store.delete(args.recipe, args.camera, target)
            what = "every version" if target is None else f"v{target}"
            print(f"deleted {what} of {args.recipe}/{args.camera}", file=out)
            return 0
        files = expand_image_paths(args.images)
        if not files:
            print("edged: teach: expected image files or folders with images, got none", file=err)
            return 1
        roi = None
        if args.roi is not None:
            mask = read_image_file(args.roi)
            roi = mask if mask.ndim == 2 else mask.max(axis=2)
        info = store.teach_files(
            args.recipe, args.camera, files, roi=roi, note=args.note, created_by=args.created_by
        )
    except EdgedError as exc:
        print(f"edged: teach: {exc}", file=err)
        return 1
    print(json.dumps(info.to_dict()) if args.json else f"taught {info}", file=out)
    return 0


def teach_main(argv: Sequence[str] | None = None) -> int:
    """``edged teach`` as a stand-alone entry point (``python -m edged.cli.teach``)."""
    parser = argparse.ArgumentParser(prog="edged teach", description=__doc__)
    configure_parser(parser)
    return cmd_teach(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(teach_main())
