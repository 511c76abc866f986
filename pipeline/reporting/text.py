"""Plain-text output for the terminal."""
from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pipeline.corrections import Preview, Version
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
    """One line per file as it finishes. A failure names its step only: its
    reason is printed once, on stderr (:func:`error_line`)."""
    width = len(str(total))
    if o.status == Outcome.SUCCEEDED:
        what = f"loaded {o.rows_after} rows ({o.rows_before} before)"
        if o.rows_dropped:
            what += f", dropped {o.rows_dropped:,} invalid row{'s' if o.rows_dropped != 1 else ''}"
        if o.rows_warned:
            what += f", kept {o.rows_warned:,} row{'s' if o.rows_warned != 1 else ''} with warnings"
        what += f" in {o.seconds:.1f} s"
        if o.note:
            what += f"; {o.note}"
    elif o.status == Outcome.SKIPPED:
        what = f"skipped: {o.note}"
    else:
        what = f"FAILED at {o.failed_step}"
    return f"[{index:>{width}}/{total}] {o.file_name}: {what}"


def summary_table(outcomes: Sequence[PeriodOutcome], states: Sequence[Mapping[str, Any]] = ()) -> str:
    """What happened to each file and, from the month states (the same as
    ``status`` shows), the state its month is in now."""
    state_of = {(s["dataset"], s["period"]): s["state"] for s in states}
    heads = ("file", "dataset", "period", "outcome", "rows", "dropped", "month state")
    cells = [[o.file_name, o.dataset or "-", o.period or "-",
              o.status if o.status != Outcome.FAILED else f"failed at {o.failed_step}",
              "" if o.rows_after is None else str(o.rows_after),
              str(o.rows_dropped) if o.rows_dropped else "",
              state_of.get((o.dataset, o.period), "-")] for o in outcomes]
    lines = format_table(heads, cells, right={4, 5})
    counts = {s: sum(o.status == s for o in outcomes) for s in Outcome}
    lines.append(f"{counts[Outcome.SUCCEEDED]} loaded, {counts[Outcome.SKIPPED]} skipped, "
                 f"{counts[Outcome.FAILED]} failed")
    return "\n".join(lines)


def print_failure(o: PeriodOutcome) -> None:
    """A failed file's reason: one stderr line, printed once."""
    if o.status == Outcome.FAILED:
        print(f"error: {error_line(o)}", file=sys.stderr, flush=True)


def error_line(o: PeriodOutcome) -> str:
    """The failure as one line that names the file once."""
    error = o.error or "failed"
    return error if error.startswith(o.file_name) else f"{o.file_name}: {error}"


def preview_lines(p: Preview) -> list[str]:
    """A reload's preview, for the terminal."""
    d = p.diff
    lines = [f"{p.dataset} {p.period}: reloading {p.file_name} would change {d.rows_before:,} → {d.rows_after:,} rows"]
    if d.changed is None:
        lines.append(f"  no primary key: {d.added:,} rows added, {d.removed:,} removed (as whole rows)")
    else:
        lines.append(f"  keys: {d.added:,} added, {d.removed:,} removed, {d.changed:,} changed, "
                     f"{d.unchanged:,} unchanged")
    for column, n in d.columns_changed.items():
        lines.append(f"  {column}: {n:,} keys changed")
    for entry in d.sample:
        lines.append("  e.g. " + ", ".join(f"{k} {v[0]!r} → {v[1]!r}" if isinstance(v, list) else f"{k}={v}"
                                           for k, v in entry.items()))
    lines.append(f"  would rebuild: {', '.join(p.downstream)}")
    lines.append("  nothing was changed (dry run)")
    return lines


def version_dict(v: Version) -> dict[str, Any]:
    return {"load_id": v.load_id, "file": v.file, "sha256": v.sha256, "rows": v.rows,
            "loaded_at": iso_utc(v.loaded_at), "served": v.served, "kept": v.kept}


def history_lines(versions: Sequence[Version]) -> list[str]:
    if not versions:
        return ["no loads of this month yet"]
    cells = [["*" if v.served else "", str(v.load_id), v.file or "", (v.sha256 or "")[:12], f"{v.rows:,}",
              iso_utc(v.loaded_at) or "", "yes" if v.kept else "no"] for v in versions]
    return format_table(("served", "load", "file", "sha256", "rows", "loaded at", "kept"), cells, right={1, 4})


def iso_utc(value: Any) -> str | None:
    """A timestamp as ISO 8601 UTC with an explicit offset (SQLite hands back
    naive values, written in UTC)."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="seconds")
