"""The ``edged`` command line (see ARCHITECTURE.md and ``edged --help``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from edged._version import __version__
from edged.cli.command_token import add_command_token_parser, cmd_command_token
from edged.cli.teach import add_teach_parser, cmd_teach
from edged.config import Settings
from edged.core.errors import ConfigError, EdgedError
from edged.imaging.imagefiles import expand_image_paths

log = logging.getLogger("edged")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edged",
        description="Streaming edge daemon for factory camera lines.",
    )
    p.add_argument("--version", action="version", version=f"edged {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", "-c", required=True, type=Path, help="YAML config file")

    chk = sub.add_parser("check-config", help="validate a config file (exit 1 on error)")
    chk.add_argument("--config", "-c", required=True, type=Path, help="YAML config file")

    ana = sub.add_parser("analyze", help="inspect image files offline; prints Result JSON")
    ana.add_argument("images", nargs="+", type=Path, help="image files or folders")
    ana.add_argument("--reference", type=Path, action="append", help="good reference image(s)")
    ana.add_argument("--recipe", help="recipe name from the config")
    ana.add_argument("--config", "-c", type=Path, help="YAML config file (default: built-in)")
    ana.add_argument(
        "--camera",
        default="offline",
        help="camera id for results; with --config and no --reference, judge against "
        "the references stored for this camera",
    )

    wat = sub.add_parser(
        "watch",
        help="subscribe to the broker and print results as they arrive",
        description="Print results as they arrive. To send an MQTT command, "
        "sign it with `edged command-token` and publish it on the topic that prints.",
    )
    wat.add_argument("--config", "-c", type=Path, help="YAML config file (default: built-in)")
    wat.add_argument("--camera", help="only this camera (default: all)")
    wat.add_argument("--node", help="node id (default: the config's node_id; '+' for all)")
    wat.add_argument("--host", help="broker host (default: mqtt.host)")
    wat.add_argument("--port", type=int, help="broker port (default: mqtt.port)")
    wat.add_argument("--json", action="store_true", help="print JSON lines, not a table")
    wat.add_argument("--count", type=int, help="exit after this many results")

    cams = sub.add_parser("cameras", help="list GenICam and OpenCV (V4L2) devices")
    cams.add_argument("--cti", type=Path, action="append", help="GenTL producer (.cti) file")
    cams.add_argument("--config", "-c", type=Path, help="take .cti files from this config")
    cams.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_teach_parser(sub)
    add_command_token_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = _COMMANDS[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


def _setup_logging(settings: Settings | None) -> None:
    from edged.config import LoggingConfig
    from edged.runtime.logs import setup_logging

    setup_logging(settings.logging if settings is not None else LoggingConfig())


def _load_or_fail(path: Path, what: str) -> Settings | None:
    from edged.recipes.validate import load_checked_settings

    try:
        return load_checked_settings(path)
    except ConfigError as exc:
        lines = str(exc).splitlines()
        print(f"edged: {what}: invalid config {path}: " + "; ".join(lines), file=sys.stderr)
        return None


def cmd_run(args: argparse.Namespace) -> int:
    settings = _load_or_fail(args.config, "cannot start")
    if settings is None:
        return 2
    _setup_logging(settings)
    from edged.daemon import Daemon

    try:
        daemon = Daemon(settings, config_path=args.config)
        return asyncio.run(daemon.run())
    except EdgedError as exc:
        print(f"edged: cannot start: {exc}", file=sys.stderr)
        return 2


def cmd_check_config(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from edged.recipes.validate import load_checked_settings

    try:
        settings = load_checked_settings(args.config)
    except ConfigError as exc:
        lines = str(exc).splitlines()
        print(f"{args.config}: {len(lines)} error(s)", file=out)
        for line in lines:
            print(f"  {line}", file=out)
        return 1
    from edged.cli.check import check_files

    problems, notes = check_files(settings)
    if problems:
        print(f"{args.config}: {len(problems)} error(s)", file=out)
        for line in problems:
            print(f"  {line}", file=out)
        for note in notes:
            print(f"  note: {note}", file=out)
        return 1
    print(
        f"{args.config}: OK (node {settings.node_id}, {len(settings.cameras)} camera(s), "
        f"{len(settings.recipes)} recipe(s))",
        file=out,
    )
    for note in notes:
        print(f"  note: {note}", file=out)
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from edged.cli.analyze import analyze_files, default_settings

    if args.config is not None:
        settings = _load_or_fail(args.config, "analyze")
        if settings is None:
            return 2
    else:
        settings = default_settings(with_reference=bool(args.reference))
    _setup_logging(settings)
    files = expand_image_paths(args.images)
    if not files:
        msg = "edged: analyze: expected image files or folders with images, got none"
        print(msg, file=sys.stderr)
        return 2
    try:
        failures = asyncio.run(
            analyze_files(
                settings,
                files,
                recipe=args.recipe,
                camera=args.camera,
                references=args.reference or [],
                stored=args.config is not None,
                out=sys.stdout,
                progress=sys.stderr if len(files) > 1 else None,
            )
        )
    except EdgedError as exc:
        print(f"edged: analyze: {exc}", file=sys.stderr)
        return 2
    return 1 if failures else 0


def cmd_watch(args: argparse.Namespace) -> int:
    settings = _load_or_fail(args.config, "watch") if args.config else Settings()
    if settings is None:
        return 2
    if args.count is not None and args.count < 1:
        print(f"edged: watch: --count: expected >= 1, got {args.count}", file=sys.stderr)
        return 2
    mqtt = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if mqtt:
        settings = settings.model_copy(update={"mqtt": settings.mqtt.model_copy(update=mqtt)})
    _setup_logging(settings)
    from edged.cli.watch import watch

    if args.config is None:
        node = args.node or settings.node_id
        where = f"{settings.mqtt.host}:{settings.mqtt.port}"
        topic = f"{settings.mqtt.prefix}/{node}/{args.camera or '+'}/result"
        print(f"edged: watch: no --config; listening on {where} to {topic}", file=sys.stderr)
    try:
        asyncio.run(
            watch(
                settings,
                camera=args.camera,
                node=args.node,
                json_lines=args.json,
                count=args.count,
                out=sys.stdout,
            )
        )
    except EdgedError as exc:
        print(f"edged: watch: {exc}", file=sys.stderr)
        return 2
    _quiet_if_pipe_closed()
    return 0


def _quiet_if_pipe_closed() -> None:
    """After the reader of stdout went away, point stdout at /dev/null so the
    interpreter's final flush does not print a BrokenPipeError."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def cmd_cameras(args: argparse.Namespace) -> int:
    """``edged cameras``: what a technician needs to write the cameras section."""
    from edged.sources.discovery import discover

    ctis: list[Path] = list(args.cti or [])
    if args.config is not None:
        settings = _load_or_fail(args.config, "cameras")
        if settings is None:
            return 2
        for cam in settings.cameras.values():
            ctis += [p for p in (cam.genicam.cti if cam.genicam else []) if p not in ctis]
    found = discover(ctis)
    if args.json:
        dump_json(found.to_dict(), sys.stdout)
    else:
        sys.stdout.write(found.to_text())
    return 1 if found.errors and not (found.genicam or found.opencv) else 0


_COMMANDS = {
    "run": cmd_run,
    "check-config": cmd_check_config,
    "analyze": cmd_analyze,
    "watch": cmd_watch,
    "cameras": cmd_cameras,
    "teach": cmd_teach,
    "command-token": cmd_command_token,
}


def dump_json(obj: object, out: TextIO) -> None:
    out.write(json.dumps(obj, separators=(",", ":")) + "\n")
