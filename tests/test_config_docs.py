"""The configuration reference and JSON Schema in docs/ are what the generator makes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tools import config_docs

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_files_match_the_models() -> None:
    for path, text in config_docs.outputs().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.name} is out of date: run python -m tools.config_docs"
        )
    assert config_docs.main(["--check"]) == 0


def test_the_reference_names_every_key() -> None:
    text = config_docs.markdown()
    for key in (
        "`node_id`",
        "`cameras.<name>.synthetic.auto_teach`",
        "`mqtt.image.max_per_s`",
        "`failures.keep_per_camera`",
        "`logging.summary_interval_s`",
        "`http.api_key_file`",
    ):
        assert key in text, key
    assert "| `cameras.<name>.recipe` | string | **required** |" in text
    assert "| `mqtt.port` | int | `1883` | ≥ 1, ≤ 65535 |" in text


@pytest.mark.parametrize("name", ["demo.yaml", "example-factory.yaml"])
def test_the_schema_accepts_the_shipped_configs(name: str) -> None:
    schema = json.loads(config_docs.SCHEMA.read_text())
    doc = yaml.safe_load((ROOT / "configs" / name).read_text())
    jsonschema.validate(doc, schema)


def test_the_schema_rejects_what_edged_rejects() -> None:
    schema = json.loads(config_docs.SCHEMA.read_text())
    doc = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    for bad in (
        {**doc, "mqttt": {}},  # unknown key
        {**doc, "mqtt": {"port": 0}},
        {**doc, "failures": {"keep_per_camera": 0}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
