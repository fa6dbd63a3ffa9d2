"""The OpenAPI document is valid OpenAPI 3.1 and its schemas describe what edged sends."""

from __future__ import annotations

import jsonschema
import pytest
from _http_helpers import ServerThread, make_runtime, part_image, png_bytes

from edged.http.openapi import openapi_document


def test_document_is_valid_openapi_3_1() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(openapi_document())


def test_every_operation_has_a_summary_and_an_error_schema() -> None:
    doc = openapi_document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["summary"], (method, path)
            assert any(code.startswith("2") for code in op["responses"]), (method, path)


def test_context_matches_the_pekat_context_schema() -> None:
    import requests

    doc = openapi_document()
    schema = {"$ref": "#/components/schemas/PekatContext", "components": doc["components"]}
    with ServerThread(make_runtime()) as srv:
        ctx = requests.post(
            srv.url + "/analyze_image", data=png_bytes(part_image(defect=True)), timeout=10
        ).json()
        err = requests.post(srv.url + "/analyze_image", data=b"", timeout=10).json()
    jsonschema.validate(ctx, schema, cls=jsonschema.Draft202012Validator)
    error_schema = {"$ref": "#/components/schemas/Error", "components": doc["components"]}
    jsonschema.validate(err, error_schema, cls=jsonschema.Draft202012Validator)
    broken = dict(ctx, result="yes")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft202012Validator)
