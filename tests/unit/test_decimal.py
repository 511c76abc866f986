"""The decimal column type: config validation, exact coercion from CSV text
and xlsx numbers, checks, Arrow/Parquet types, and its storage on SQLite
(scaled 64-bit integers, on a real SQLite file)."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pytest
import sqlalchemy as sa

from pipeline.domain.coerce import coerce_column
from pipeline.domain.config import ColumnConfig, parse_config
from pipeline.domain.schema import arrow_schema, build_schema
from pipeline.errors import ConfigError
from pipeline.warehouse.backends import decimal_type
from pipeline.warehouse.backends.sqlite import from_scaled, to_scaled

REPO = Path(__file__).resolve().parents[2]


def dataset(amount: dict[str, Any]) -> Any:
    raw = {"datasets": {"sales": {"file_pattern": r"^sales_(?P<period>\d{4}-\d{2})\.csv$",
                                  "columns": {"id": {"type": "integer"}, "amount": amount}}}}
    return parse_config(raw, REPO / "datasets_config.yml").dataset("sales")


MONEY = {"type": "decimal", "precision": 6, "scale": 2}


@pytest.mark.parametrize(("amount", "fragment"), [
    ({"type": "decimal"}, "key 'columns.amount.precision': required for a decimal column"),
    ({"type": "decimal", "precision": 10}, "key 'columns.amount.scale': required for a decimal column"),
    ({"type": "decimal", "precision": "10", "scale": 2}, "columns.amount.precision': required"),
    ({"type": "decimal", "precision": True, "scale": 0}, "columns.amount.precision': required"),
    ({"type": "decimal", "precision": 0, "scale": 0}, "columns.amount.precision': 0 must be between 1 and 38"),
    ({"type": "decimal", "precision": 39, "scale": 2}, "columns.amount.precision': 39 must be between 1 and 38"),
    ({"type": "decimal", "precision": 5, "scale": 6}, "columns.amount.scale': 6 must be between 0 and 5"),
    ({"type": "decimal", "precision": 5, "scale": -1}, "columns.amount.scale': -1 must be between 0 and 5"),
    ({"type": "float", "precision": 5}, "columns.amount.precision': only decimal columns take precision"),
    ({"type": "decimal", "precision": 5, "scale": 2, "regex": "x"}, "only string columns take a regex"),
])
def test_bad_decimal_settings_name_dataset_and_key(amount: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        dataset(amount)
    assert "dataset 'sales'" in str(info.value) and fragment in str(info.value)


def test_decimal_column_types_in_arrow_and_the_typed_frame() -> None:
    ds = dataset({**MONEY, "ge": 0})
    assert arrow_schema(ds).field("amount").type == pyarrow.decimal128(6, 2)
    col = ds.columns["amount"]
    assert (col.precision, col.scale) == (6, 2)


def coerce(values: list[Any], spec: dict[str, Any] = MONEY) -> tuple[list[Any], list[bool]]:
    col = ColumnConfig(name="amount", type="decimal", precision=spec["precision"], scale=spec["scale"])
    result = coerce_column(np.array(values, dtype=object), col)
    return [None if pd.isna(v) else v for v in result.values], result.bad.tolist()


def test_csv_text_is_parsed_exactly_and_never_rounded() -> None:
    values, bad = coerce(["0.10", " 1234.5 ", "1.50", "-3", "1e2", "1.555", "10000.00", "abc", "NaN", ""])
    assert values[:5] == [Decimal("0.10"), Decimal("1234.50"), Decimal("1.50"), Decimal("-3.00"), Decimal("100.00")]
    assert values[5:] == [None] * 5
    # 1.555: a third decimal; 10000.00: 5 whole digits > precision - scale = 4
    assert bad == [False] * 5 + [True, True, True, True, False]


def test_xlsx_numbers_are_taken_as_the_decimal_excel_shows() -> None:
    values, bad = coerce([0.1, 0.1 + 0.2, 12, 1234.56, 2.675, True])
    assert values[0] == Decimal("0.10") and values[2] == Decimal("12.00") and values[3] == Decimal("1234.56")
    # 0.1 + 0.2 is 0.30000000000000004 in a double: more digits than the scale
    assert bad == [False, True, False, False, True, True]


def test_bounds_and_isin_compare_exactly() -> None:
    ds = dataset({**MONEY, "gt": 0.1, "le": 100, "isin": [0.3, 100, "5.5"]})
    frame = pd.DataFrame({
        "id": pd.array([1, 2, 3, 4, 5], dtype="Int64"),
        "amount": pd.array([Decimal("0.10"), Decimal("0.30"), Decimal("100.00"), Decimal("5.50"),
                            Decimal("100.01")], dtype=pd.ArrowDtype(pyarrow.decimal128(6, 2))),
    })
    with pytest.raises(pa.errors.SchemaErrors) as info:
        build_schema(ds, "2025-01").validate(frame, lazy=True)
    failures = info.value.failure_cases
    failed = {(row["check"], str(row["failure_case"])) for _, row in failures.iterrows()}
    assert failed == {("> 0.1", "0.10"), ("≤ 100", "100.01"), ("isin [0.3, 100, 5.5]", "0.10"),
                      ("isin [0.3, 100, 5.5]", "100.01")}


def test_sqlite_storage_is_the_value_times_ten_to_the_scale() -> None:
    assert to_scaled(Decimal("12.30"), 2) == 1230 and to_scaled("-0.05", 2) == -5 and to_scaled(7, 3) == 7000
    assert to_scaled(Decimal("9999999999999999.99"), 2) == 999999999999999999  # 18 digits
    assert from_scaled(1230, 2) == Decimal("12.30") and str(from_scaled(-5, 2)) == "-0.05"
    assert str(from_scaled(999999999999999999, 2)) == "9999999999999999.99"
    with pytest.raises(ValueError, match="more digits after the point than the column's scale 2"):
        to_scaled(Decimal("1.555"), 2)
    with pytest.raises(ValueError, match="more than 18 digits"):
        to_scaled(Decimal("10000000000000000.00"), 2)
    with pytest.raises(TypeError, match="rebuild this table"):
        from_scaled(12.3, 2)  # a double left by an older warehouse is never guessed at


def test_a_sqlite_decimal_column_stores_integers_and_reads_back_decimals(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    table = sa.Table("money", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column("amount", decimal_type(18, 2)))
    values = [Decimal("0.10"), Decimal("0.20"), Decimal("9999999999999999.99"), Decimal("-1.50"), None]
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), [{"id": i, "amount": v} for i, v in enumerate(values)])
    with engine.connect() as conn:
        raw = [r[0] for r in conn.exec_driver_sql("SELECT amount FROM money ORDER BY id")]
        assert raw == [10, 20, 999999999999999999, -150, None]  # integers, not doubles
        assert conn.exec_driver_sql("SELECT typeof(amount) FROM money WHERE id = 2").scalar() == "integer"
        assert [r[0] for r in conn.execute(sa.select(table.c.amount).order_by(table.c.id))] == values
        reflected = sa.Table("money", sa.MetaData(), autoload_with=conn)  # as readers that reflect see it
        assert [r[0] for r in conn.execute(sa.select(reflected.c.amount).order_by(reflected.c.id))] == values
        ddl = sa.inspect(conn).get_columns("money")[1]["type"]
        assert (type(ddl).__name__, ddl.precision, ddl.scale) == ("NUMERIC", 18, 2)
    engine.dispose()
