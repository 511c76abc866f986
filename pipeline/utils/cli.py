"""The thin shell every stage's ``main()`` shares: argument parsing that
reports usage errors as one line, and the mapping of the project's errors to
one stderr line and an exit status (SPEC §6)."""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Callable, Collection, Sequence

from pipeline.errors import UsageError, WorkbenchError


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def parser(prog: str, description: str) -> Parser:
    p = Parser(prog=prog, description=description)
    p.add_argument("--debug", action="store_true", help="show a traceback on failure")
    return p


def run(p: argparse.ArgumentParser, argv: Sequence[str] | None,
        action: Callable[[argparse.Namespace], int]) -> int:
    """Parse ``argv`` and call ``action``; expected failures become one stderr line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if not debug:
        # Library warnings (openpyxl on odd styles, pandas deprecations) would
        # break the one-line-on-stderr contract; --debug shows them.
        warnings.simplefilter("ignore")
    try:
        args = p.parse_args(argv)
        return action(args)
    except WorkbenchError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the one place that turns surprises into one line
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"error: unexpected {type(exc).__name__}: {first} (run with --debug for details)",
              file=sys.stderr)
        return 1


def format_table(heads: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> list[str]:
    """A plain-text table for the terminal: a head line, a rule, the rows;
    columns at the positions in ``right`` (numbers) are right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(heads)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    return [line(heads), line(["-" * w for w in widths]), *(line(r) for r in rows)]
