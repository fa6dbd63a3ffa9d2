"""Issue 20, items 2 and "Also": an empty API key never means "no authentication",
and check-config / start-up catch what would otherwise fail later (or silently)."""

from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path

import pytest

from edged.cli.main import cmd_check_config
from edged.config import Settings, load_settings
from edged.core.errors import ConfigError
from edged.daemon import Daemon, StartupError

BASE = "cameras: {}\nrecipes: {r1: {}}\nmqtt: {enabled: false}\n"


def _check(path: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = cmd_check_config(argparse.Namespace(config=path), out)
    return code, out.getvalue()


def _config(tmp_path: Path, text: str) -> Path:
    cfg = tmp_path / "edged.yaml"
    dirs = f"state_dir: {tmp_path / 'state'}\nreferences_dir: {tmp_path / 'refs'}\n"
    cfg.write_text(dirs + text)
    return cfg


def test_empty_inline_api_key_fails_check_config(tmp_path: Path) -> None:
    code, out = _check(_config(tmp_path, BASE + 'http: {api_key: ""}\n'))
    assert code == 1
    assert "http: api_key: expected a non-empty key" in out


def test_blank_api_key_file_fails_check_config(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("  \n")
    code, out = _check(_config(tmp_path, BASE + f"http: {{api_key_file: {key}}}\n"))
    assert code == 1
    assert (
        f"http.api_key_file: expected a file holding the secret, got an empty file {str(key)!r}"
        in out
    )


def test_empty_api_key_from_the_environment_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGED_HTTP__API_KEY", "")
    code, out = _check(_config(tmp_path, BASE))
    assert code == 1
    assert "api_key: expected a non-empty key" in out


def test_missing_key_files_and_a_file_for_a_directory_fail_check_config(tmp_path: Path) -> None:
    refs = tmp_path / "refs-is-a-file"
    refs.write_text("x")
    cfg = tmp_path / "edged.yaml"
    cfg.write_text(
        f"state_dir: {tmp_path / 'state'}\nreferences_dir: {refs}\n"
        "cameras: {}\nrecipes: {r1: {}}\n"
        f"mqtt: {{password_file: {tmp_path / 'nope'}, command_secret_file: {tmp_path / 'nope2'}}}\n"
    )
    code, out = _check(cfg)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].endswith("3 error(s)")
    assert f"  mqtt.password_file: expected a readable file, got {str(tmp_path / 'nope')!r}" in out
    assert "mqtt.command_secret_file: expected a readable file" in out
    assert f"  references_dir: expected a directory, got {str(refs)!r} (a file)" in lines


def test_good_config_still_passes_check_config(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k" * 20)
    code, out = _check(_config(tmp_path, BASE + f"http: {{api_key_file: {key}}}\n"))
    assert code == 0
    assert out.split(": ", 1)[1].startswith("OK (node ")
    assert out.endswith(", 0 camera(s), 1 recipe(s))\n")
    assert not (tmp_path / "state").exists()  # checking creates nothing


def test_duplicate_yaml_keys_are_an_error(tmp_path: Path) -> None:
    cfg = _config(tmp_path, BASE + "http:\n  api_key: abcdefgh\n  port: 8001\n  api_key: x\n")
    with pytest.raises(
        ConfigError, match=r"expected each key once per mapping, got 'api_key' twice"
    ):
        load_settings(cfg)


def test_empty_config_file_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "empty.yaml"
    cfg.write_text("\n# nothing\n")
    with pytest.raises(ConfigError, match="expected a mapping of settings, got an empty file"):
        load_settings(cfg)


async def test_references_dir_that_is_a_file_stops_start_with_the_reason(tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    refs.write_text("not a directory")
    settings = Settings(
        recipes={"r1": {}},
        mqtt={"enabled": False},
        http={"enabled": False},
        state_dir=tmp_path / "state",
        references_dir=refs,
    )
    daemon = Daemon(settings)
    with pytest.raises(
        StartupError, match=r"references_dir: expected a directory, got .* \(a file\)"
    ):
        await daemon.start()
    await daemon.stop()


@pytest.mark.parametrize(
    ("host", "api_key", "warned"),
    [
        ("0.0.0.0", None, True),
        ("0.0.0.0", "a-key-of-some-length", False),
        ("127.0.0.1", None, False),
    ],
)
async def test_listening_beyond_loopback_without_a_key_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, host: str, api_key: str | None, warned: bool
) -> None:
    settings = Settings(
        recipes={"r1": {}},
        mqtt={"enabled": False},
        http={"host": host, "port": 0, "api_key": api_key},
        metrics={"enabled": False},
        state_dir=tmp_path / "state",
        references_dir=tmp_path / "refs",
    )
    daemon = Daemon(settings)
    with caplog.at_level(logging.WARNING, logger="edged.daemon"):
        await daemon.start()
        await daemon.stop()
    messages = [r.getMessage() for r in caplog.records]
    hit = [m for m in messages if "without an API key" in m]
    assert bool(hit) is warned, messages
    if warned:
        assert hit[0].startswith("HTTP listens on 0.0.0.0 without an API key: anyone who can")


def test_bare_name_secrets_are_checked_where_systemd_would_read_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(tmp_path, BASE + "http: {api_key_file: api-key}\n")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    code, out = _check(cfg)
    assert code == 0
    assert (
        "note: http.api_key_file: 'api-key' not checked ($CREDENTIALS_DIRECTORY is not set)" in out
    )
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "api-key").write_text("\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    code, out = _check(cfg)
    assert code == 1
    assert "http.api_key_file: expected a file holding the secret, got an empty file" in out
