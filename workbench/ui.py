"""What every page of the dashboard shares: the cached reads (keyed by the
warehouse URL so two warehouses never share an entry), the colours of the
states and statuses, small formatters, and the per-run view of the warehouse
that every page builds first (``workbench.shell.open_page``).

No layout here beyond one-line helpers: pages live in ``workbench/views/``,
queries in ``workbench/data.py``.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from pipeline.domain.config import Config
from pipeline.errors import WorkbenchError
from pipeline.io.config_file import load_config
from pipeline.settings import Settings
from pipeline.warehouse.engine import get_engine
from workbench import data

# Cached reads expire so runs made from the CLI show up without a click; the
# Refresh button and every reload clear them at once.
CACHE_TTL_S = 30
PAGE_SIZE = data.DEFAULT_PAGE_SIZE

# Coverage legend, colour-blind-safe. The first four are today's states; the
# next ones are the run log's state names (published … failed_serving_previous).
# A state this table does not know is drawn in NEUTRAL rather than failing.
NEUTRAL = "#9e9e9e"
STATE_COLORS = {
    data.LOADED: "#2e7d32", data.STALE: "#f9a825", data.PENDING: "#1e88e5", data.FAILED: "#d81b60",
    data.SERVING_PREVIOUS: "#8e24aa", data.MISSING: "#cfd8dc",
}
# Which states count as "loaded" / "failed" in the headline numbers: a month
# whose re-delivery failed still serves its earlier rows, so it is both.
LOADED_STATES = frozenset(data.SERVED_STATES)
FAILED_STATES = frozenset({data.FAILED, data.SERVING_PREVIOUS})
STATUS_COLORS = {"rejected": "#c62828", "failed": "#c62828", "accepted": "#2e7d32",
                 "passed": "#2e7d32", "succeeded": "#2e7d32"}


def state_color(state: object) -> str:
    return STATE_COLORS.get(str(state), NEUTRAL)


def state_scale(states: list[str]) -> tuple[list[str], list[str]]:
    """Legend domain and colours: the known states in legend order, then any
    unknown state present in the data (neutral)."""
    domain = list(STATE_COLORS) + sorted(s for s in set(states) if s not in STATE_COLORS)
    return domain, [state_color(s) for s in domain]


# --------------------------------------------------------------------------
# The warehouse as this run sees it
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class View:
    settings: Settings
    url: str
    shown_url: str
    config: Config
    status: pd.DataFrame
    empty: bool
    as_of: dt.datetime | None = None



# --------------------------------------------------------------------------
# Cached reads
# --------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def get_config(path: str, mtime: float) -> Config:
    # mtime in the key: an edited config is read again without a restart.
    return load_config(Path(path))


def config_mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_status(url: str, config_path: str, mtime: float) -> tuple[pd.DataFrame, dt.datetime]:
    """The month states and when they were read (the page says "data as of")."""
    return data.period_status(get_engine(url, migrate=False), get_config(config_path, mtime)), data.now_utc()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_is_empty(url: str) -> bool:
    return data.warehouse_is_empty(get_engine(url, migrate=False))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_options(url: str, kind: str) -> dict[str, list[str]]:
    return data.log_filter_options(get_engine(url, migrate=False), kind)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_log_periods(url: str, kind: str, dataset: str | None) -> list[str]:
    return data.log_periods(get_engine(url, migrate=False), kind, dataset)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_count(url: str, kind: str, dataset: str | None, period: str | None,
                 status: str | None, step: str | None) -> int:
    return data.count_log(get_engine(url, migrate=False), kind, data.LogFilter(dataset, period, status, step))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_log(url: str, kind: str, dataset: str | None, period: str | None, status: str | None,
               step: str | None, offset: int) -> pd.DataFrame:
    flt = data.LogFilter(dataset, period, status, step)
    return data.read_log(get_engine(url, migrate=False), kind, flt, limit=PAGE_SIZE, offset=offset)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_failed(url: str, dataset: str | None, period: str | None) -> pd.DataFrame:
    return data.failed_validations(get_engine(url, migrate=False), data.LogFilter(dataset, period))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_errors(url: str, validation_id: int) -> pd.DataFrame:
    return data.validation_errors(get_engine(url, migrate=False), validation_id)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_reloadable(url: str, datasets: tuple[str, ...]) -> pd.DataFrame:
    return data.reloadable_periods(get_engine(url, migrate=False), datasets)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_attempts(url: str, dataset: str, period: str) -> pd.DataFrame:
    return data.month_attempts(get_engine(url, migrate=False), dataset, period)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_latest_invalid(url: str, dataset: str, period: str) -> int | None:
    return data.latest_validation_with_errors(get_engine(url, migrate=False), dataset, period)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_check_totals(url: str, validation_id: int) -> pd.DataFrame:
    return data.check_totals(get_engine(url, migrate=False), validation_id)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_month_errors(url: str, validation_id: int) -> pd.DataFrame:
    return data.month_errors(get_engine(url, migrate=False), validation_id)


# --------------------------------------------------------------------------
# Never a traceback
# --------------------------------------------------------------------------
log = logging.getLogger("workbench")


def retry_button(key: str) -> None:
    st.button("Retry", key=key, icon=":material/refresh:", on_click=st.cache_data.clear,
              help="Read the warehouse again")


@contextlib.contextmanager
def guard(where: str) -> Iterator[None]:
    """Run a view; a warehouse or pipeline error becomes one line and a
    Retry button instead of a traceback (st.stop/st.rerun pass through)."""
    try:
        yield
    except (sa.exc.SQLAlchemyError, WorkbenchError) as exc:
        log.warning("%s: %s", where, exc)
        st.error(f"Cannot show the {where}: {data.first_line(exc)}", icon=":material/error:")
        retry_button(f"retry_{where.replace(' ', '_')}")


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------
def any_label(value: str | None) -> str:
    return "All" if value is None else value


def _status_style(value: object) -> str:
    color = STATUS_COLORS.get(str(value))
    return f"color: {color}; font-weight: 600" if color else ""


def styled(frame: pd.DataFrame, status_cols: list[str]) -> pd.io.formats.style.Styler | pd.DataFrame:
    cols = [c for c in status_cols if c in frame]
    if frame.empty or not cols:
        return frame
    return frame.style.map(_status_style, subset=cols)


def listing(periods: list[str], most: int = 12) -> str:
    # 100 months of failures must not turn the caption into a wall of text.
    shown = ", ".join(periods[:most])
    return shown if len(periods) <= most else f"{shown} … and {len(periods) - most} more"


def when(value: object) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")
