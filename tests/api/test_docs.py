"""Swagger UI and ReDoc work offline (self-hosted assets); the OpenAPI documents everything."""

import re

import pytest

EXTERNAL_URL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


@pytest.mark.parametrize(
    ("page", "asset_marker"),
    [("/docs", "SwaggerUIBundle"), ("/redoc", "Redoc")],
)
def test_docs_pages_load_every_asset_from_the_api_itself(client, page, asset_marker):
    response = client.get(page)

    assert response.status_code == 200
    html = response.text
    assert not EXTERNAL_URL.search(html), "the page would need the internet"
    assets = re.findall(r"""(?:src|href)="([^"]+)\"""", html)
    scripts = [asset for asset in assets if asset.endswith(".js")]
    assert scripts and all(asset.startswith("/static/") for asset in assets)
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 0
    bundle = client.get(scripts[0]).text
    assert asset_marker in bundle
    assert len(bundle) > 500_000  # the real bundle, not a placeholder


def test_openapi_has_examples_for_every_request_body(client):
    spec = client.get("/openapi.json").json()

    bodies = [
        (path, operation["requestBody"]["content"]["application/json"])
        for path, operations in spec["paths"].items()
        for operation in operations.values()
        if "requestBody" in operation
    ]

    assert {path for path, _ in bodies} == {"/classify/{model}", "/classify/{model}/batch"}
    for path, media in bodies:
        assert media.get("examples"), path


@pytest.mark.parametrize("path", ["/classify/{model}", "/classify/{model}/batch"])
def test_openapi_documents_error_responses_with_examples(client, path):
    responses = client.get("/openapi.json").json()["paths"][path]["post"]["responses"]

    assert {"200", "404", "413", "422", "503"} <= responses.keys()
    for status in ("404", "413", "422", "503"):
        assert responses[status]["content"]["application/json"]["example"], status
    assert "X-Request-ID" in responses["200"]["headers"]


def test_request_schema_comes_from_the_contract(client):
    from penguin_contract import FIELDS

    schema = client.get("/openapi.json").json()["components"]["schemas"]["PenguinFeatures"]

    assert schema["required"] == [spec.name for spec in FIELDS]
    for spec in FIELDS:
        field = schema["properties"][spec.name]
        if spec.codes is None:
            assert (field["minimum"], field["maximum"]) == (spec.minimum, spec.maximum)
        else:
            assert field["anyOf"][0]["enum"] == list(spec.codes)
            assert field["anyOf"][1]["enum"] == list(spec.codes.values())
