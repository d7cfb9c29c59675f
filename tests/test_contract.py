"""The data contract: encodings, ranges and the artifact naming rule."""

import pytest

from penguin_contract import (
    FEATURES,
    FIELDS,
    ISLANDS,
    METRIC_COLUMNS,
    REPORT_COLUMNS,
    SEXES,
    SPECIES,
    code_for,
    model_filename,
    model_name_from_filename,
    normalize_model_name,
)


def test_species_and_categorical_codes_match_the_published_contract():
    assert dict(SPECIES) == {1: "Adelie", 2: "Chinstrap", 3: "Gentoo"}
    assert dict(ISLANDS) == {1: "Torgersen", 2: "Biscoe", 3: "Dream"}
    assert dict(SEXES) == {0: "female", 1: "male"}


def test_features_are_the_seven_request_fields_in_order():
    assert FEATURES == (
        "island",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "sex",
        "year",
    )


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("island", 1, 3),
        ("bill_length_mm", 10, 100),
        ("bill_depth_mm", 5, 35),
        ("flipper_length_mm", 100, 300),
        ("body_mass_g", 1000, 10000),
        ("sex", 0, 1),
        ("year", 2000, 2030),
    ],
)
def test_field_ranges(name, low, high):
    field = next(f for f in FIELDS if f.name == name)
    assert (field.minimum, field.maximum) == (low, high)


def test_allowed_text_names_codes_or_range():
    by_name = {f.name: f for f in FIELDS}
    assert by_name["island"].allowed() == "1 (Torgersen), 2 (Biscoe), 3 (Dream)"
    assert by_name["body_mass_g"].allowed() == "1000 to 10000"


@pytest.mark.parametrize(("label", "code"), [("Biscoe", 2), ("  dream ", 3), ("TORGERSEN", 1)])
def test_code_for_is_case_insensitive(label, code):
    assert code_for(ISLANDS, label) == code


def test_code_for_rejects_unknown_labels_listing_the_valid_ones():
    with pytest.raises(ValueError, match="Torgersen, Biscoe, Dream"):
        code_for(ISLANDS, "Atlantis")


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [("RandomForest", "randomforest"), ("svm_2", "svm_2"), ("knn-5", "knn-5")],
)
def test_model_names_are_lower_cased(raw, normalized):
    assert normalize_model_name(raw) == normalized
    assert model_filename(raw) == f"{normalized}_model.pkl"


@pytest.mark.parametrize(
    "bad", ["", "../x", "a/b", "a\\b", ".hidden", "best", "BEST", "x" * 65, "café", "a b", "-x"]
)
def test_bad_or_reserved_names_are_refused(bad):
    with pytest.raises(ValueError):
        normalize_model_name(bad)


@pytest.mark.parametrize(
    ("filename", "name"),
    [
        ("svm_model.pkl", "svm"),
        ("my_knn_model.pkl", "my_knn"),
        ("SVM_model.pkl", None),  # not canonical: never served under another spelling
        ("best_model.pkl", None),
        (".svm_model.pkl.abc.tmp", None),
        ("svm.pkl", None),
        ("model_metrics.pkl", None),
    ],
)
def test_model_name_from_filename(filename, name):
    assert model_name_from_filename(filename) == name


def test_report_columns_start_with_model_then_metrics():
    assert REPORT_COLUMNS[: 1 + len(METRIC_COLUMNS)] == ("model", *METRIC_COLUMNS)
