"""Property-based fuzzing of the OpenAPI schema (schemathesis): no input makes the API fail.

schemathesis' lazy pytest loader (`schemathesis.pytest.from_fixture`) does not work with
pytest 9 (it reads `Function._nodeid`), so each operation's Hypothesis strategy is run here
with `hypothesis.given`, one parametrized test per operation.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.core.config import Settings
from app.main import create_app

OPERATIONS = [
    "GET /models",
    "HEAD /models",
    "GET /models/{name}",
    "POST /classify/{model}",
    "POST /classify/{model}/batch",
    "GET /health",
    "HEAD /health",
    "GET /ready",
    "HEAD /ready",
    "GET /metrics",
    "GET /models/{name}/confusion-matrix",
    "GET /models/{name}/versions",
    "GET /predictions/recent",
    "GET /predictions/stats",
]
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.fixture(scope="module")
def api_schema(trained_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    store = trained_models.copy_to(root / "store")
    (root / "results").mkdir()
    app = create_app(
        Settings(
            models_dir=store.models_dir,
            report_path=store.report_path,
            results_dir=root / "results",
        )
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _operation(api_schema, label: str):
    method, path = label.split(" ", 1)
    return api_schema[path][method]


def test_every_operation_is_fuzzed(api_schema):
    labels = {result.ok().label for result in api_schema.get_all_operations()}

    assert labels == set(OPERATIONS)


def _strategy(api_schema, label: str):
    """The operation's generated cases, half of them with real model names, so that real
    predictions and descriptions (200s) are produced and checked too."""
    strategy = _operation(api_schema, label).as_strategy()
    for parameter in ("model", "name"):
        if f"{{{parameter}}}" in label:
            names = st.sampled_from(["randomforest", "SVM", "gradientboosting", "best"])
            strategy = st.one_of(
                strategy,
                st.tuples(strategy, names).map(lambda pair, p=parameter: _with(p, *pair)),
            )
    return strategy


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_generated_input_causes_a_server_error(api_schema, label):
    strategy = _strategy(api_schema, label)

    @FUZZ
    @given(case=strategy)
    def run(case):
        response = case.call_and_validate(checks=[not_a_server_error])
        assert response.status_code < 500

    run()


@pytest.mark.parametrize("label", OPERATIONS)
def test_responses_conform_to_the_documented_schema(api_schema, label):
    # JSON Schema cannot say "all columns have the same length", so a schema-valid columnar
    # batch may rightly get 422: that one check does not apply to the batch operation.
    excluded = [positive_data_acceptance] if label.endswith("/batch") else []

    @FUZZ
    @given(case=_strategy(api_schema, label))
    def run(case):
        case.call_and_validate(excluded_checks=excluded)

    run()


def _with(parameter: str, case, name: str):
    case.path_parameters = {**(case.path_parameters or {}), parameter: name}
    return case
