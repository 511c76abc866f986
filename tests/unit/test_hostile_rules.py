"""The pure rules behind the hostile corpus: periods, readable names, short
lines, exact integers, unusable Excel cells."""
from __future__ import annotations

import io
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.domain.coerce import CellError, coerce_column
from pipeline.domain.period import Period, is_period, normalise_period, parse_cli_period
from pipeline.errors import FileRefused, UsageError, count_list, one_line, readable, shorten
from pipeline.io.landed import _unusable_cells


@pytest.mark.parametrize("text", ["2025-06\n", "２０２５-０６", "٢٠٢٥-٠٦", " 2025-06", "2025-6", "202506",
                                  "2025-13", "0000-01", "2025-06 ", "", "2025–06"])
def test_only_ascii_yyyy_mm_is_a_period(text: str) -> None:
    assert not is_period(text)
    with pytest.raises(UsageError, match="invalid --period"):
        parse_cli_period(text)
    with pytest.raises(ValueError):
        Period.of(text)


def test_a_good_period_round_trips() -> None:
    assert parse_cli_period("2025-06") == "2025-06" and str(Period.of("2025-06")) == "2025-06"
    assert normalise_period("202506") == "2025-06"
    for bad in ("٢٠٢٥٠٦", "2025-06\n", "２０２５０６"):
        with pytest.raises(FileRefused, match="ASCII digits"):
            normalise_period(bad)


def test_readable_escapes_undecodable_bytes_and_control_characters() -> None:
    assert readable("citizens_2025-06.csv") == "citizens_2025-06.csv"
    assert readable("a\udcffb.csv") == "a\\xffb.csv"
    assert readable("a.csv\n") == "a.csv\\n"
    assert readable("ørsted_٢٠٢٥.csv") == "ørsted_٢٠٢٥.csv"


def test_lines_stay_short() -> None:
    assert shorten("a\n\nb") == "a; b"
    assert len(shorten("x" * 2000)) == 500
    many = count_list([f"c{i}" for i in range(16_379)], "unexpected column")
    assert many.startswith("16,379 unexpected columns: 'c0', 'c1'") and many.endswith("more") and len(many) < 400
    assert count_list(["a"], "missing column") == "missing column: 'a'"


def test_one_line_prefers_a_noted_server_reason() -> None:
    try:
        try:
            error = OSError("invalid socket")
            error.server_reason = "connection lost: terminating connection"  # type: ignore[attr-defined]
            raise error
        except OSError:
            raise RuntimeError("connection already closed") from None
    except RuntimeError as exc:
        exc.__context__ = error
        assert one_line(exc) == "connection lost: terminating connection"


def test_integers_never_pass_through_a_float() -> None:
    column = SimpleNamespace(type="integer", name="n")
    values = np.array(["9007199254740993", " -9223372036854775808 ", "9223372036854775808", "+7", 2**62 + 1, "1e3"],
                      dtype=object)
    result = coerce_column(values, column)  # type: ignore[arg-type]
    assert list(result.bad) == [False, False, True, False, False, False]
    got = [None if mask else int(v) for v, mask in zip(result.values.tolist(), result.values.isna())]
    assert got == [9007199254740993, -(2**63), None, 7, 2**62 + 1, 1000]


@pytest.mark.parametrize("kind", ["integer", "float", "string", "date", "datetime", "boolean"])
def test_excel_errors_fail_every_type(kind: str) -> None:
    values = np.array([CellError("#N/A"), "", None], dtype=object)
    result = coerce_column(values, SimpleNamespace(type=kind, name="n"))  # type: ignore[arg-type]
    assert list(result.bad) == [True, False, False] and list(result.blank) == [False, True, True]


def test_unusable_cells_are_found_in_the_sheet_xml() -> None:
    xml = (b'<worksheet><sheetData><row r="1"><c r="A1" t="e"/><c r="B1"><v>5</v></c></row>'
           b'<row r="2"><x:c r="C2" s="1"><x:f>SUM(A1:B1)</x:f></x:c>'
           b'<c r="D2" t="e"><f>1/0</f><v>#DIV/0!</v></c><c r="E2" t="str"><f>""</f><v></v></c>'
           b'<c r="F2"><f>A1&amp;B1</f><v/></c><c r="G2"><f>1+1</f><v>2</v></c></row></sheetData></worksheet>')
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("sheet.xml", xml)
    found = _unusable_cells(zipfile.ZipFile(buffer), "sheet.xml")
    assert {k: str(v) for k, v in found.items()} == {(1, 2): "=SUM(A1:B1)", (1, 3): "#DIV/0!", (1, 5): "=A1&B1"}
