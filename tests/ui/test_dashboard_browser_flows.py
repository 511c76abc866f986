"""The dashboard as an analyst uses it, in a real browser (issue 17): open a
month from the grid, leave a reload (close the tab, refresh, rerun) while it
runs, two tabs reloading one month, the warehouse going away mid-session,
and a new delivery processed from the page.

One streamlit server and one Chromium serve the whole module (a throw-away
SQLite warehouse holding citizens 2025-01..03), so each test reads counts
before and after rather than absolute numbers. The server runs with the
job runner's test hook ``WORKBENCH_TEST_JOB_GATE`` (workbench/jobs.py): a
running job waits while the gate file exists, so "while it runs" lasts
exactly until the test deletes the file — deterministic, not a race, however
loaded the machine is.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.warehouse.engine import dispose_engines
from tests.conftest import Workspace
from tests.ui import browser_support as bs

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STAGE_LOADS = ("SELECT count(*) FROM meta.load_log WHERE step = 'load_stage' "
               "AND dataset = 'citizens' AND period = :period")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Iterator[tuple[Workspace, bs.Server]]:
    """citizens 2025-01..03 run into a fresh SQLite warehouse, served by one
    streamlit process for the module (its process group is stopped after)."""
    reason = bs.missing_browser()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; under CI the browser tests must run", pytrace=False)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("browser_flows")
    db_url = f"sqlite:///{root / 'data' / 'warehouse' / 'workbench.sqlite'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("WORKBENCH_DATA_DIR", str(root / "data"))
        mp.setenv("WORKBENCH_DB_URL", db_url)
        mp.setenv("WORKBENCH_CONFIG", str(bs.REPO / "datasets_config.yml"))
        dispose_engines()
        ws = Workspace(root=root, db_url=db_url)
        ws.add_demo(demo_dir, "citizens_2025-0[1-3]*")
        run = ws.cli("run")
        assert run.returncode == 0, run.stdout + run.stderr
        env = {**os.environ, "WORKBENCH_TEST_JOB_GATE": str(root / "job.gate")}
        with bs.running_server(bs.APP, root, root / "streamlit.log", env) as server:
            yield ws, server
            print(f"streamlit log:\n{server.log_tail()}")
        dispose_engines()


@pytest.fixture(scope="module")
def chrome(site: tuple[Workspace, bs.Server]) -> Iterator[Any]:
    driver = bs.new_driver()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(chrome: Any, site: tuple[Workspace, bs.Server], request: pytest.FixtureRequest,
         tmp_path: Path) -> Iterator[Any]:
    """The module's browser, one tab left, a screenshot of it after the test."""
    for handle in chrome.window_handles[1:]:
        chrome.switch_to.window(handle)
        chrome.close()
    chrome.switch_to.window(chrome.window_handles[0])
    yield chrome
    shot = tmp_path / f"{request.node.name}.png"
    chrome.save_screenshot(str(shot))
    print(f"screenshot: {shot}")


def wait(driver: Any, timeout: float = bs.WAIT_S) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,))


def shown(driver: Any, xpath: str, timeout: float = bs.WAIT_S) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    return wait(driver, timeout).until(ec.visibility_of_element_located((By.XPATH, xpath)))


def click(driver: Any, xpath: str) -> None:
    """Click once the element is there and enabled (a rerun may redraw it)."""
    from selenium.webdriver.common.by import By

    def attempt(_: Any) -> bool:
        element = driver.find_element(By.XPATH, xpath)
        if not element.is_enabled():
            return False
        element.click()
        return True

    wait(driver).until(attempt)


def open_overview(driver: Any, server: bs.Server) -> None:
    driver.get(server.url + "/")
    shown(driver, bs.grid_cell_xpath("citizens", "2025-01"))
    shown(driver, bs.button_xpath("Reload"))


def page_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


@contextlib.contextmanager
def gate_closed(ws: Workspace) -> Iterator[None]:
    """Jobs that start running inside this block wait until it ends."""
    gate = ws.root / "job.gate"
    gate.touch()
    try:
        yield
    finally:
        gate.unlink(missing_ok=True)


def settle(ws: Workspace, sql: str, expected: int, timeout: float = bs.WAIT_S, **params: Any) -> None:
    deadline = time.monotonic() + timeout
    while ws.scalar(sql, **params) != expected and time.monotonic() < deadline:
        time.sleep(0.3)
    assert ws.scalar(sql, **params) == expected


def test_a_grid_cell_opens_its_month(page: Any, site: tuple[Workspace, bs.Server]) -> None:
    _, server = site
    open_overview(page, server)
    shown(page, bs.grid_cell_xpath("citizens", "2025-02")).click()
    shown(page, "//h3[contains(., 'citizens · 2025-02')]")
    assert "month?dataset=citizens&period=2025-02" in page.current_url
    assert shown(page, bs.metric_xpath("State")).text == "published"
    assert "Traceback" not in page_text(page)


def test_b_leaving_a_running_reload_runs_it_once(page: Any, site: tuple[Workspace, bs.Server]) -> None:
    """The tab that started the reload is closed while the job runs; a second
    tab sees it running, is refreshed and rerun meanwhile, then shows the
    outcome by itself with Reload usable again; the reload ran exactly once,
    and refreshing after it ended starts nothing."""
    ws, server = site
    loads = ws.scalar(STAGE_LOADS, period="2025-03")
    open_overview(page, server)
    first = page.current_window_handle
    with gate_closed(ws):
        click(page, bs.button_xpath("Reload"))
        shown(page, bs.sidebar_alert_xpath("Reload of citizens 2025-03: running"))
        page.switch_to.new_window("tab")  # another tab, then the first one goes away mid-job
        second = page.current_window_handle
        page.switch_to.window(first)
        page.close()
        page.switch_to.window(second)
        open_overview(page, server)
        shown(page, bs.sidebar_alert_xpath("Reload of citizens 2025-03: running"))  # every tab sees the job
        page.refresh()  # a browser refresh mid-job: a new session, no new job
        open_overview(page, server)
        shown(page, bs.sidebar_alert_xpath("Reload of citizens 2025-03: running"))
        page.find_element("tag name", "body").send_keys("r")  # Streamlit's rerun key: no new job either
        shown(page, bs.sidebar_alert_xpath("Reload of citizens 2025-03: running"))
        assert "queued since" not in page_text(page), "leaving or refreshing the tab queued another reload"
        assert ws.scalar(STAGE_LOADS, period="2025-03") == loads  # still waiting at the gate

    shown(page, bs.sidebar_alert_xpath("Reloaded citizens 2025-03"), timeout=bs.WAIT_S)
    wait(page).until(lambda d: "running since" not in page_text(d))
    click(page, bs.button_xpath("Refresh"))
    shown(page, bs.button_xpath("Reload"))
    assert page.find_element("xpath", bs.button_xpath("Reload")).is_enabled()
    assert ws.scalar(STAGE_LOADS, period="2025-03") == loads + 1
    page.refresh()
    open_overview(page, server)
    time.sleep(1)
    # A job started by the refresh would be listed by every tab at once (and log a load later).
    text = page_text(page)
    assert "running since" not in text and "queued since" not in text, "a refresh started the reload again"
    assert ws.scalar(STAGE_LOADS, period="2025-03") == loads + 1, "the reload ran again after a refresh"
    assert "Traceback" not in page_text(page)


def test_c_two_tabs_reloading_one_month_queue(page: Any, site: tuple[Workspace, bs.Server]) -> None:
    """Two tabs press Reload on the same month: the second waits in the queue
    (and says so), then each runs once, one after the other."""
    ws, server = site
    before = ws.scalar("SELECT coalesce(max(id), 0) FROM meta.load_log")
    open_overview(page, server)
    tab_a = page.current_window_handle
    page.switch_to.new_window("tab")
    tab_b = page.current_window_handle
    open_overview(page, server)
    page.switch_to.window(tab_a)
    with gate_closed(ws):
        click(page, bs.button_xpath("Reload"))
        shown(page, bs.sidebar_alert_xpath("Reload of citizens 2025-03: running"))
        page.switch_to.window(tab_b)
        click(page, bs.button_xpath("Reload"))
        shown(page, bs.sidebar_alert_xpath("Reload of citizens 2025-03: queued"))
        page.switch_to.window(tab_a)  # the first tab sees the second tab's job waiting behind its own
        shown(page, bs.sidebar_alert_xpath("Reload of citizens 2025-03: queued"))

    settle(ws, STAGE_LOADS + " AND id > :before AND finished_at IS NOT NULL", 2, period="2025-03",
           before=before, timeout=bs.WAIT_S)
    rows = ws.rows("SELECT started_at, finished_at, status FROM meta.load_log WHERE step = 'load_stage' "
                   "AND dataset = 'citizens' AND period = '2025-03' AND id > :before ORDER BY id", before=before)
    assert [r[2] for r in rows] == ["succeeded", "succeeded"]
    assert str(rows[1][0]) >= str(rows[0][1]), f"the second reload started before the first ended: {rows}"
    for handle in (tab_a, tab_b):  # each tab shows its own outcome and has recovered
        page.switch_to.window(handle)
        shown(page, bs.sidebar_alert_xpath("Reloaded citizens 2025-03"))
        wait(page).until(lambda d: "queued since" not in page_text(d) and "running since" not in page_text(d))
    time.sleep(1)
    assert ws.scalar(STAGE_LOADS + " AND id > :before", period="2025-03", before=before) == 2


def test_d_warehouse_gone_mid_session(page: Any, site: tuple[Workspace, bs.Server]) -> None:
    """The warehouse folder disappears while the page is open: the next run
    shows one line and Retry, no traceback; Retry brings the page back once
    it is there again."""
    from selenium.webdriver.common.by import By

    ws, server = site
    open_overview(page, server)
    shown(page, bs.metric_xpath("Months loaded"))
    warehouse = ws.data_dir / "warehouse"
    away = ws.data_dir / "warehouse.away"
    dispose_engines()
    warehouse.rename(away)
    try:
        click(page, bs.button_xpath("Refresh"))
        alert = shown(page, "//*[@data-testid='stAlert'][contains(., 'No warehouse at')]")
        assert "python -m pipeline run" in alert.text
        shown(page, bs.button_xpath("Retry"))
        text = page_text(page)
        assert "Traceback" not in text and "OperationalError" not in text and "sqlalchemy" not in text
        assert not page.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
        assert len(page.find_elements(By.XPATH, "//*[@data-testid='stAlert'][contains(., 'warehouse')]")) == 1
        assert not page.find_elements(By.XPATH, bs.metric_xpath("Months loaded")), "stale KPIs still shown"
        assert not page.find_elements(By.XPATH, bs.button_xpath("Reload")), "Reload offered without a warehouse"
        assert not away.with_name("warehouse").exists(), "the dashboard created a warehouse"
    finally:
        away.rename(warehouse)
    click(page, bs.button_xpath("Retry"))
    shown(page, bs.metric_xpath("Months loaded"))
    assert "No warehouse at" not in page_text(page)


def test_e_new_delivery_is_pending_and_processed(page: Any, site: tuple[Workspace, bs.Server],
                                                 demo_dir: Path) -> None:
    """A file copied into landed/ shows as pending (grid and New deliveries);
    Process new files loads it and the month turns published."""
    ws, server = site
    open_overview(page, server)
    shutil.copy2(demo_dir / "citizens_2025-04.xlsx", ws.landed / "citizens_2025-04.xlsx")
    click(page, bs.button_xpath("Refresh"))
    shown(page, "//*[contains(normalize-space(.), 'New deliveries (1)')]")
    assert "state: pending" in shown(page, bs.grid_cell_xpath("citizens", "2025-04")).get_attribute("aria-label")
    click(page, bs.button_xpath("Process new files"))
    outcome = shown(page, bs.sidebar_alert_xpath("Processed 1 file"))
    assert "citizens 2025-04" in outcome.text and "1 loaded" in outcome.text
    wait(page).until(lambda d: "state: published" in (d.find_element(
        "xpath", bs.grid_cell_xpath("citizens", "2025-04")).get_attribute("aria-label") or ""))
    assert not page.find_elements("xpath", "//*[contains(normalize-space(.), 'New deliveries (')]")
    assert ws.scalar("SELECT count(*) FROM meta.load_log WHERE step = 'load_stage' AND dataset = 'citizens' "
                     "AND period = '2025-04' AND status = 'succeeded'") >= 1
