"""Plain-text output for the terminal."""
from __future__ import annotations

import sys
from collections.abc import Collection, Sequence

from pipeline.orchestrate import Outcome, PeriodOutcome


def format_table(heads: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> list[str]:
    """A plain-text table for the terminal: a head line, a rule, the rows;
    columns at the positions in ``right`` (numbers) are right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(heads)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    return [line(heads), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def progress_line(index: int, total: int, o: PeriodOutcome) -> str:
    width = len(str(total))
    if o.status == Outcome.SUCCEEDED:
        what = f"loaded {o.rows_after} rows ({o.rows_before} before) in {o.seconds:.1f} s"
        if o.note:
            what += f"; {o.note}"
    elif o.status == Outcome.SKIPPED:
        what = f"skipped: {o.note}"
    else:
        what = f"FAILED at {o.failed_step}: {o.error}"
    return f"[{index:>{width}}/{total}] {o.file_name}: {what}"


def summary_table(outcomes: Sequence[PeriodOutcome]) -> str:
    heads = ("file", "dataset", "period", "outcome", "rows")
    cells = [[o.file_name, o.dataset or "-", o.period or "-",
              o.status if o.status != Outcome.FAILED else f"failed at {o.failed_step}",
              "" if o.rows_after is None else str(o.rows_after)] for o in outcomes]
    lines = format_table(heads, cells, right={4})
    counts = {s: sum(o.status == s for o in outcomes) for s in Outcome}
    lines.append(f"{counts[Outcome.SUCCEEDED]} loaded, {counts[Outcome.SKIPPED]} skipped, "
                 f"{counts[Outcome.FAILED]} failed")
    return "\n".join(lines)


def print_outcomes(outcomes: Sequence[PeriodOutcome]) -> None:
    print(summary_table(outcomes))
    for o in outcomes:
        if o.status == Outcome.FAILED:
            print(f"error: {error_line(o)}", file=sys.stderr)


def error_line(o: PeriodOutcome) -> str:
    """The failure as one line that names the file once."""
    error = o.error or "failed"
    return error if error.startswith(o.file_name) else f"{o.file_name}: {error}"
