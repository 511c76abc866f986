"""The thin shell every command's ``main()`` shares: argument parsing that
reports usage errors as one line, and the mapping of the project's errors to
one stderr line and an exit status (SPEC §6)."""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence

from pipeline.errors import UsageError, WorkbenchError, shorten, unexpected
from pipeline.warehouse.replace import LoadResult


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def parser(prog: str, description: str) -> Parser:
    p = Parser(prog=prog, description=description)
    p.add_argument("--debug", action="store_true", help="show a traceback on failure")
    return p


# The largest id a BIGINT column holds (SQLite and PostgreSQL alike).
MAX_ID = 2**63 - 1


def row_id(text: str) -> int:
    """An argparse type for a log id: a positive whole number a BIGINT holds."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"invalid id {shorten(repr(text), 40)}: expected a whole number "
                                         f"from 1 to {MAX_ID}")
    return int(value)


def error_line(text: object) -> str:
    """What goes to stderr for a failure: one line, at most 500 characters."""
    return "error: " + shorten(str(text), 493)


def run(p: argparse.ArgumentParser, argv: Sequence[str] | None,
        action: Callable[[argparse.Namespace], int]) -> int:
    """Parse ``argv`` and call ``action``; expected failures become one stderr line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    hook = sys.excepthook
    if not debug:
        # Library warnings (openpyxl on odd styles, pandas deprecations) would
        # break the one-line-on-stderr contract; --debug shows them. So would
        # tracebacks a C extension prints itself (psycopg2 does, through
        # sys.excepthook, when the server drops the connection mid-COPY): the
        # error still reaches the handlers below and is reported once.
        warnings.simplefilter("ignore")
        sys.excepthook = lambda *_: None
    try:
        args = p.parse_args(argv)
        return action(args)
    except WorkbenchError as exc:
        if debug:
            raise
        print(error_line(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``... | head``): what it read was all it
        # wanted. Not an error; and stdout must not be flushed again at exit,
        # or Python prints "Exception ignored ... BrokenPipeError".
        quiet_stdout()
        return 0
    except Exception as exc:  # the one place that turns surprises into one line
        if debug:
            raise
        print(error_line(f"{unexpected(exc)} (run with --debug for details)"), file=sys.stderr)
        return 1
    finally:
        sys.excepthook = hook



def quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (tests capture stdout)
        pass


def replaced_line(r: LoadResult) -> str:
    """What a transform or publish of one table did, as one line."""
    return f"{r.table} period {r.period}: {r.rows_deleted} rows deleted, {r.rows_inserted} inserted"
