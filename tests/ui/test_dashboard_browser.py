"""End to end in a real browser: `streamlit run workbench/app.py` as a server,
headless Debian Chromium driven by selenium, press Reload, read the outcome.

Needs /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium
chromium-driver); no browser is ever downloaded. Without them the test skips,
except under CI=true, where a missing browser is a failure.
"""
from __future__ import annotations

import os
import time

import openpyxl
import pytest

from tests.ui import browser_support as bs

WAIT_S = bs.WAIT_S

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def require_browser() -> None:
    reason = bs.missing_browser()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; under CI the browser test must run", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def server(workspace, demo_dir, tmp_path, free_port):  # type: ignore[no-untyped-def]
    """A warehouse holding citizens 2025-01..03 and the dashboard serving it;
    yields the port. The server runs in its own session so its real PID is
    known, and only that process group is stopped afterwards."""
    workspace.add_demo(demo_dir, "citizens_2025-0[1-3]*")
    run = workspace.cli("run")
    assert run.returncode == 0, run.stdout + run.stderr
    try:
        running = bs.start_server(bs.APP, workspace.root, tmp_path / "streamlit.log", os.environ, free_port)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield running.port
    finally:
        bs.stop_server(running)


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    require_browser()
    driver = bs.new_driver()
    try:
        yield driver
    finally:
        driver.quit()


def test_reload_in_a_real_browser(server, browser, workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_S)
    shot = tmp_path / "dashboard_after_reload.png"
    try:
        browser.get(f"http://127.0.0.1:{server}/")
        # Painted: the coverage chart, the citizens counts and the reload control.
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".st-key-counts_citizens")))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-testid='stVegaLiteChart']")))
        period = browser.find_element(By.CSS_SELECTOR, ".st-key-reload_period input")
        assert period.get_attribute("value") == "2025-03"  # newest accepted month preselected
        before = int(workspace.scalar("SELECT count(*) FROM stage.citizens WHERE _data_period = '2025-03'"))

        # The analyst re-delivers March with only 10 rows and reloads it.
        path = workspace.landed / "citizens_2025-03.xlsx"
        wb = openpyxl.load_workbook(path)
        wb.active.delete_rows(12, wb.active.max_row)
        wb.save(path)
        stage_loads = ("SELECT count(*) FROM meta.load_log WHERE step = 'load_stage' "
                       "AND dataset = 'citizens' AND period = '2025-03'")
        loads = workspace.scalar(stage_loads)
        button = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".st-key-reload button")))
        # An impatient double click: both clicks leave the browser before the
        # server has answered the first, so the button is not disabled yet.
        # The first submits a job; the second, from the same tab while that
        # job is queued or running, is dropped: the month reloads once.
        # (Queueing across tabs is the AppTest case in test_dashboard.py.)
        browser.execute_script("arguments[0].click(); arguments[0].click();", button)

        outcome = wait.until(ec.visibility_of_element_located(
            (By.XPATH, "//*[@data-testid='stSidebar']//*[@data-testid='stAlert']"
                       "[contains(., 'Reloaded citizens 2025-03')]")))
        assert f"stage {before:,} rows → 10 rows" in outcome.text
        # The page repainted with fresh counts: the button is usable again.
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".st-key-reload button")))
        assert workspace.scalar("SELECT count(*) FROM stage.citizens WHERE _data_period = '2025-03'") == 10
        time.sleep(2)  # a second reload, had one started, would have logged by now
        assert workspace.scalar(stage_loads) == loads + 1, "the double click reloaded twice"
        time.sleep(1)  # let the charts finish their transition before the picture
    finally:
        height = browser.execute_script("return document.body.scrollHeight") or 1400
        browser.set_window_size(1500, min(max(int(height), 1000), 3000))
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_month_page_preview_approve_reload(server, browser, workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Open a month by its link, Preview the corrected delivery, approve it
    with a reason: the reload job runs once and the page shows the new count."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_S)
    shot = tmp_path / "month_after_reload.png"
    before = int(workspace.scalar("SELECT count(*) FROM stage.citizens WHERE _data_period = '2025-03'"))
    path = workspace.landed / "citizens_2025-03.xlsx"
    wb = openpyxl.load_workbook(path)
    wb.active.delete_rows(12, wb.active.max_row)  # the corrected delivery: 10 rows
    wb.save(path)
    stage_loads = ("SELECT count(*) FROM meta.load_log WHERE step = 'load_stage' "
                   "AND dataset = 'citizens' AND period = '2025-03'")
    loads = workspace.scalar(stage_loads)

    def metric(label: str) -> str:
        xpath = (f"//*[@data-testid='stMetric'][.//*[@data-testid='stMetricLabel'][normalize-space()='{label}']]"
                 "//*[@data-testid='stMetricValue']")
        return str(browser.find_element(By.XPATH, xpath).text)

    try:
        browser.get(f"http://127.0.0.1:{server}/month?dataset=citizens&period=2025-03")
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".st-key-preview button"))).click()
        wait.until(lambda _: metric("Rows after") == "10")
        assert metric("Rows now") == f"{before:,}" and metric("Removed") == f"{before - 10:,}"
        assert workspace.scalar(stage_loads) == loads  # the preview wrote nothing
        reason = browser.find_element(By.CSS_SELECTOR, ".st-key-approve_reason input")
        reason.send_keys("supplier re-sent March", Keys.ENTER)
        # The reason reruns the page, which redraws the button (enabled now):
        # click it once it is, retrying only while the old element is replaced.
        patient = WebDriverWait(browser, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
        patient.until(lambda _: browser.find_element(By.CSS_SELECTOR, ".st-key-approve button").is_enabled())
        patient.until(lambda _: browser.find_element(By.CSS_SELECTOR, ".st-key-approve button").click() or True)
        wait.until(ec.visibility_of_element_located(
            (By.XPATH, "//*[@data-testid='stSidebar']//*[@data-testid='stAlert']"
                       "[contains(., 'Reloaded citizens 2025-03')]")))
        wait.until(lambda _: metric("Stage rows") == "10")  # the page refreshed itself
        assert workspace.scalar("SELECT count(*) FROM stage.citizens WHERE _data_period = '2025-03'") == 10
        time.sleep(2)  # a second run, had one started, would have logged by now
        assert workspace.scalar(stage_loads) == loads + 1, "the approved reload ran more than once"
        assert workspace.rows("SELECT reason, actor FROM meta.corrections") == [("supplier re-sent March",
                                                                                 "dashboard")]
        assert "dataset=citizens" in browser.current_url and "period=2025-03" in browser.current_url
    finally:
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
