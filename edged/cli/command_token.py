"""``edged command-token``: a signed MQTT command payload, ready to publish.

    edged command-token --config FILE --camera cam1 recipe '{"recipe": "r2"}'
    mosquitto_pub -t edged/line-1/cam1/cmd/recipe -q 1 -m "$(edged command-token ...)"

Prints the payload (the command's fields plus an ``auth`` token, see
:mod:`edged.publish.command_auth`) on stdout and the topic to publish it on on
stderr. The token is valid for ``mqtt.command_token_window_s`` and only once.
The secret is the config's ``mqtt.command_secret_file`` (or ``--secret-file``).

Exit status: 0 printed, 2 the configuration, secret or fields are unusable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from edged.config import Settings, load_settings
from edged.core.errors import ConfigError
from edged.publish._topics import COMMANDS, Topics
from edged.publish.command_auth import sign_command


def add_command_token_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``command-token`` subcommand to an ``edged`` subparser set."""
    p = sub.add_parser(
        "command-token",
        help="print a signed MQTT command payload (HMAC token) for cmd/trigger|recipe|teach",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--config", "-c", type=Path, help="YAML config file (secret, prefix, node)")
    p.add_argument("--secret-file", type=Path, help="the secret (default: the config's)")
    p.add_argument("--camera", required=True, help="camera id")
    p.add_argument("--node", help="node id (default: the config's node_id)")
    p.add_argument("command", choices=COMMANDS, help="the command")
    p.add_argument("fields", nargs="?", default="{}", help="the command's JSON object")


def cmd_command_token(
    args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    try:
        settings = load_settings(args.config) if args.config else Settings()
        if args.secret_file is not None:
            mqtt = settings.mqtt.model_copy(
                update={"command_secret": None, "command_secret_file": args.secret_file}
            )
            settings = settings.model_copy(update={"mqtt": mqtt})
        secret = settings.command_secret()
    except ConfigError as exc:
        print(f"edged: command-token: {exc}", file=err)
        return 2
    if secret is None:
        msg = "expected mqtt.command_secret_file in the config or --secret-file, got neither"
        print(f"edged: command-token: {msg}", file=err)
        return 2
    try:
        fields = json.loads(args.fields)
    except json.JSONDecodeError as exc:
        print(f"edged: command-token: fields: expected a JSON object ({exc.msg})", file=err)
        return 2
    if not isinstance(fields, dict) or "auth" in fields:
        got = "one with 'auth'" if isinstance(fields, dict) else type(fields).__name__
        print(f"edged: command-token: fields: expected a JSON object, got {got}", file=err)
        return 2
    topic = Topics(settings.mqtt.prefix, args.node or settings.node_id).command(
        args.camera, args.command
    )
    payload = sign_command(secret, topic, fields)
    out.write(json.dumps(payload, separators=(",", ":")) + "\n")
    print(f"topic: {topic}", file=err)
    return 0
