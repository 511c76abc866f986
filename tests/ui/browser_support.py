"""Shared by the real-browser tests, the first-paint benchmark and the
screenshot script: start ``streamlit run`` as a server whose real PID is
known (its own session, stopped by that process group only) and drive
Debian's /usr/bin/chromium through /usr/bin/chromedriver with selenium.

No browser is ever downloaded. Without chromium the browser tests skip,
except under CI=true, where a missing browser is a failure.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "workbench" / "app.py"
CHROMIUM = Path(os.environ.get("WORKBENCH_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("WORKBENCH_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
CHROME_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic",
)
WAIT_S = 60


def missing_browser() -> str | None:
    """Why the browser cannot run here, or None."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return None
    return f"{' and '.join(missing)} not found (apt-get install -y chromium chromium-driver)"


@dataclass
class Server:
    """A running ``streamlit run``; ``url`` is its root."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def wait_healthy(server: Server, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.proc.returncode}:\n{server.log_tail()}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return
        time.sleep(0.2)
    raise RuntimeError(f"streamlit not healthy after {timeout:.0f} s:\n{server.log_tail()}")


def start_server(app: Path, cwd: Path, log: Path, env: Mapping[str, str] | None = None,
                 port: int | None = None) -> Server:
    """``streamlit run app`` in its own process session (so its real PID and
    group are known), headless, usage statistics off, healthy on return."""
    port = port or free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
             "--client.toolbarMode", "viewer"],
            cwd=cwd, env=dict(env if env is not None else os.environ), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(proc, port, log)
    try:
        wait_healthy(server)
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: Server) -> None:
    """Stop this server's process group (and nothing else)."""
    try:
        os.killpg(server.proc.pid, signal.SIGTERM)
        server.proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(15)
    except ProcessLookupError:
        pass


@contextlib.contextmanager
def running_server(app: Path, cwd: Path, log: Path, env: Mapping[str, str] | None = None) -> Iterator[Server]:
    server = start_server(app, cwd, log, env)
    try:
        yield server
    finally:
        stop_server(server)


def new_driver(width: int = 1500, height: int = 1400) -> Any:
    """A headless Debian Chromium driven by selenium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROME_FLAGS, f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


# --------------------------------------------------------------------------
# Selectors that survive layout changes: test ids, keys, visible text.
# --------------------------------------------------------------------------
def grid_cell_xpath(dataset: str, period: str) -> str:
    """The coverage grid's cell of one month: Vega's SVG marks carry an
    aria-label built from the tooltip ("dataset: citizens; period: 2025-02; …")."""
    return (f"//*[@data-testid='stVegaLiteChart']//*[local-name()='path']"
            f"[contains(@aria-label, 'dataset: {dataset};')][contains(@aria-label, 'period: {period};')]")


def sidebar_alert_xpath(text: str) -> str:
    return f"//*[@data-testid='stSidebar']//*[@data-testid='stAlert'][contains(., {xpath_literal(text)})]"


def button_xpath(label: str) -> str:
    return f"//button[normalize-space(.)={xpath_literal(label)} or .//p[normalize-space(.)={xpath_literal(label)}]]"


def metric_xpath(label: str) -> str:
    return (f"//*[@data-testid='stMetric'][.//*[@data-testid='stMetricLabel'][normalize-space()="
            f"{xpath_literal(label)}]]//*[@data-testid='stMetricValue']")


def xpath_literal(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in text.split("'")) + ")"
