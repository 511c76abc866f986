"""Pure checks of file names, periods and header rows."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.files import parse_and_validate_filename, validate_headers
from pipeline.domain.period import parse_cli_period
from pipeline.errors import FileRefused, UsageError
from pipeline.io.config_file import load_config
from tests.conftest import CONFIG_PATH

CONFIG = load_config(CONFIG_PATH)
DATASETS = CONFIG.datasets
CITIZENS = CONFIG.dataset("citizens")
PAYMENTS = CONFIG.dataset("benefit_payments")
CITIZEN_HEADERS = ["Citizen ID", "First Name", "Last Name", "Birth Date", "Sex",
                   "Municipality Code", "Household ID", "Monthly Income"]


@pytest.mark.parametrize("name, dataset, period", [
    ("citizens_2025-06.xlsx", "citizens", "2025-06"),
    ("citizens_202506.xlsx", "citizens", "2025-06"),
    ("benefit_payments_2024-12.csv", "benefit_payments", "2024-12"),
    ("benefit_payments_202401.xlsx", "benefit_payments", "2024-01"),
])
def test_filename_gives_dataset_and_normalised_period(name: str, dataset: str, period: str) -> None:
    parsed = parse_and_validate_filename(name, DATASETS)
    assert (parsed.dataset, parsed.period) == (dataset, period)


@pytest.mark.parametrize("name, fragment", [
    ("citizens_2025-13.xlsx", "month must be 01–12"),
    ("citizens_2025-00.xlsx", "month must be 01–12"),
    ("citizens_202513.xlsx", "month must be 01–12"),
    ("citizens_june_2025.xlsx", "matches no dataset"),
    ("citizens_2025-06.xls", "matches no dataset"),
    ("payments_2025-06.csv", "matches no dataset"),
])
def test_bad_filenames_are_refused_with_the_reason(name: str, fragment: str) -> None:
    with pytest.raises(FileRefused, match=fragment) as info:
        parse_and_validate_filename(name, DATASETS)
    assert name in str(info.value)


def test_year_and_month_groups_are_supported() -> None:
    from pipeline.domain.config import parse_config

    cfg = parse_config({"datasets": {"sales": {
        "file_pattern": r"^sales_(?P<month>\d{1,2})_(?P<year>\d{4})\.csv$",
        "columns": {"amount": {"type": "float"}}}}}, CONFIG_PATH)
    assert parse_and_validate_filename("sales_3_2025.csv", cfg.datasets).period == "2025-03"
    with pytest.raises(FileRefused, match="01–12"):
        parse_and_validate_filename("sales_13_2025.csv", cfg.datasets)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60) | st.from_regex(r"(citizens|benefit_payments)_\d{4}-?\d{2}\.(xlsx|csv)", fullmatch=True))
def test_filename_parser_returns_a_result_or_its_own_error(name: str) -> None:
    try:
        parsed = parse_and_validate_filename(name, DATASETS)
    except FileRefused:
        return
    assert parsed.dataset in DATASETS
    year, month = parsed.period.split("-")
    assert len(year) == 4 and 1 <= int(month) <= 12


@pytest.mark.parametrize("text", ["2025-6", "202506", "2025-13", "2025-00", "25-06", "", "2025-06; DROP TABLE x"])
def test_cli_period_accepts_only_yyyy_mm(text: str) -> None:
    with pytest.raises(UsageError):
        parse_cli_period(text)
    assert parse_cli_period("2025-06") == "2025-06"


def test_headers_map_aliases_and_plain_names_ignoring_case_and_spaces() -> None:
    headers = ["  citizen id ", "FIRST NAME", "last_name", "Birth Date", "sex",
               "Municipality Code", "household_id", " monthly income"]
    positions = validate_headers(headers, CITIZENS)
    assert positions == {c: i for i, c in enumerate(CITIZENS.columns)}


def test_header_order_does_not_matter() -> None:
    positions = validate_headers(list(reversed(CITIZEN_HEADERS)), CITIZENS)
    assert positions["citizen_id"] == 7 and positions["monthly_income"] == 0


def test_missing_column_is_named() -> None:
    with pytest.raises(FileRefused, match="missing column: 'Monthly Income'"):
        validate_headers(CITIZEN_HEADERS[:-1], CITIZENS)


def test_unexpected_column_is_refused_unless_ignored() -> None:
    with pytest.raises(FileRefused, match="unexpected column: 'Shoe Size'"):
        validate_headers([*CITIZEN_HEADERS, "Shoe Size"], CITIZENS)
    assert PAYMENTS.extra_columns == "ignore"
    payment_headers = ["Payment ID", "Citizen ID", "Benefit Type", "Amount", "Payment Date",
                       "Booked At", "Is Correction", "Clerk"]
    assert "payment_id" in validate_headers(payment_headers, PAYMENTS)


def test_duplicate_header_even_by_case_and_spaces() -> None:
    with pytest.raises(FileRefused, match="duplicate header for column 'first_name'"):
        validate_headers([*CITIZEN_HEADERS, " first NAME"], CITIZENS)


def test_trailing_blank_headers_are_ignored_but_a_blank_in_between_is_not() -> None:
    validate_headers([*CITIZEN_HEADERS, None, ""], CITIZENS)
    with pytest.raises(FileRefused, match="blank header in column 2"):
        validate_headers([CITIZEN_HEADERS[0], None, *CITIZEN_HEADERS[1:]], CITIZENS)
