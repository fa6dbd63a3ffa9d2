from __future__ import annotations

from pathlib import Path

import pytest

from edged.config import load_settings
from edged.core.errors import ConfigError
from edged.recipes.validate import load_checked_settings

BASE = {
    "node_id": "cell-7",
    "cameras": {"top": {"recipe": "label", "fps": 12.5}},
    "recipes": {"label": {"limits": ["quality.brightness.over_per <= 2"]}},
}


def test_loads_yaml_with_defaults(write_config) -> None:
    s = load_settings(write_config(BASE))
    assert s.node_id == "cell-7"
    cam = s.cameras["top"]
    assert cam.fps == 12.5
    assert cam.source == "synthetic"
    assert cam.synthetic is not None  # filled in for synthetic sources
    assert cam.on_full == "drop_oldest"
    assert s.mqtt.prefix == "edged"
    assert s.http_recipe == "label"


def test_env_overrides_yaml(write_config, monkeypatch) -> None:
    monkeypatch.setenv("EDGED_MQTT__PORT", "2883")
    monkeypatch.setenv("EDGED_NODE_ID", "from-env")
    s = load_settings(write_config(BASE))
    assert s.mqtt.port == 2883
    assert s.node_id == "from-env"


def test_env_override_is_validated(write_config, monkeypatch) -> None:
    monkeypatch.setenv("EDGED_MQTT__PORT", "not-a-port")
    with pytest.raises(ConfigError, match=r"mqtt\.port: .*not-a-port"):
        load_settings(write_config(BASE))


def _errors(write_config, doc) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(doc))
    return str(info.value)


def test_misspelt_key_names_its_path(write_config) -> None:
    doc = {**BASE, "cameras": {"top": {"recipe": "label", "fsp": 5}}}
    assert "cameras.top.fsp: unknown key" in _errors(write_config, doc)


def test_wrong_type_names_path_and_value(write_config) -> None:
    doc = {**BASE, "mqtt": {"port": "eighteen"}}
    err = _errors(write_config, doc)
    assert "mqtt.port:" in err
    assert "'eighteen'" in err


def test_negative_fps_rejected(write_config) -> None:
    doc = {**BASE, "cameras": {"top": {"recipe": "label", "fps": -3}}}
    err = _errors(write_config, doc)
    assert "cameras.top.fps: Input should be greater than 0 (got -3)" in err


def test_unknown_recipe_reference(write_config) -> None:
    doc = {**BASE, "cameras": {"top": {"recipe": "nope"}}}
    assert "cameras.top.recipe: expected one of ['label'], got 'nope'" in _errors(write_config, doc)


def test_bad_limit_expression(write_config) -> None:
    doc = {**BASE, "recipes": {"label": {"limits": ["quality.over_per <<= 2"]}}}
    assert "expected 'check.figure OP value'" in _errors(write_config, doc)


def test_unknown_check(write_config) -> None:
    doc = {**BASE, "recipes": {"label": {"checks": {"sharpnes": {}}}}}
    with pytest.raises(ConfigError) as info:
        load_checked_settings(write_config(doc))
    assert "recipes.label.checks: unknown check" in str(info.value)


def test_genicam_source_needs_its_section(write_config) -> None:
    doc = {**BASE, "cameras": {"top": {"recipe": "label", "source": "genicam"}}}
    assert "expected a 'genicam' section" in _errors(write_config, doc)


def test_several_errors_reported_together(write_config) -> None:
    doc = {**BASE, "mqtt": {"port": 0, "qos": 3}, "http": {"max_concurrent": 0}}
    lines = _errors(write_config, doc).splitlines()
    assert {line.split(":")[0] for line in lines} >= {
        "mqtt.port",
        "mqtt.qos",
        "http.max_concurrent",
    }


def test_not_yaml(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("cameras: [unclosed\n")
    with pytest.raises(ConfigError, match="expected valid YAML"):
        load_settings(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a readable YAML file"):
        load_settings(tmp_path / "missing.yaml")


def test_secret_from_credentials_directory(write_config, tmp_path, monkeypatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt-password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    s = load_settings(write_config({**BASE, "mqtt": {"password_file": "mqtt-password"}}))
    assert s.mqtt_password() == "s3cret"


def test_secret_given_twice_rejected(write_config) -> None:
    doc = {**BASE, "http": {"api_key": "a", "api_key_file": "/x"}}
    assert "expected one of 'api_key' or 'api_key_file', got both" in _errors(write_config, doc)


def test_unreadable_secret_file_is_config_error(write_config, tmp_path) -> None:
    s = load_settings(write_config({**BASE, "http": {"api_key_file": str(tmp_path / "none")}}))
    with pytest.raises(ConfigError, match=r"http\.api_key_file: expected a readable file"):
        s.http_api_key()


@pytest.mark.parametrize("name", ["demo.yaml", "example-factory.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    path = Path(__file__).parent.parent / "configs" / name
    s = load_settings(path)
    assert s.recipes


def test_reserved_camera_id_rejected(write_config) -> None:
    doc = {**BASE, "cameras": {"http": {"recipe": "label"}}}
    assert "cameras.http: expected a camera id other than ['http', 'offline']" in _errors(
        write_config, doc
    )
