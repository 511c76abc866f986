"""How the notebooks read list parameters papermill hands over (-y gives a
list, -p the JSON text, -r one bare value)."""
from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import UsageError
from pipeline.notebook_helpers import list_parameter


@pytest.mark.parametrize(("given", "expected"), [
    (None, None),                                     # the default: every period
    (["2025-01", "2025-03"], ["2025-01", "2025-03"]),  # -y 'periods: [2025-01, 2025-03]', a dict from Python
    (("2025-01",), ["2025-01"]),
    ('["2025-01", "2025-03"]', ["2025-01", "2025-03"]),  # -p periods '["2025-01", "2025-03"]'
    (' [ "2025-01" ] ', ["2025-01"]),
    ("[]", []),
    ("2025-06", ["2025-06"]),                         # -r periods 2025-06
    ("None", None),                                   # -r periods None
    ("", None),
])
def test_list_parameters_as_papermill_passes_them(given: Any, expected: list[str] | None) -> None:
    assert list_parameter(given, "periods") == expected


@pytest.mark.parametrize("given", ["[2025-01", "['2025-01']", "[202501]", '{"a": 1}', '["a", null]'])
def test_a_malformed_list_is_one_line_naming_the_parameter(given: str) -> None:
    with pytest.raises(UsageError) as failed:
        list_parameter(given, "compare")
    message = str(failed.value)
    assert message.startswith(f"compare: {given!r} is not a JSON list of strings")
    assert "-p compare '[\"a\", \"b\"]'" in message and "\n" not in message


def test_a_number_is_not_a_list() -> None:
    with pytest.raises(UsageError, match=r"^periods: expected a list, got 202501$"):
        list_parameter(202501, "periods")
