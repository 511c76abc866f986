"""Screenshots of the dashboard for the README, in one command:

    .venv/bin/python scripts/screenshots.py [--out docs]

Builds a throw-away demo warehouse (``pipeline demo --with-bad-files`` then
``pipeline run`` into a temporary SQLite file, then a corrected March
delivery landed for the preview), starts ``streamlit run workbench/app.py``
on a free port (stopped by its own PID afterwards), drives headless Debian
Chromium (/usr/bin/chromium + /usr/bin/chromedriver, via selenium) and
saves:

- ``overview.png``: the coverage grid, KPIs and row counts;
- ``month.png``: the month page of a month whose delivery failed validation
  (attempts, invalid rows with the spreadsheet header);
- ``preview.png``: the month page after Preview of a corrected delivery
  (the correction's dry run: rows now/after, added/removed/changed).

Nothing outside the temporary folder and ``--out`` is written.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.ui import browser_support as bs  # noqa: E402

WIDTH = 1500


def build_warehouse(root: Path, env: dict[str, str]) -> None:
    """Demo deliveries (with the faulty ones) run into a fresh SQLite file."""
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=root, env=env,
                              capture_output=True, text=True, timeout=600)

    demo = cli("demo", "--with-bad-files")
    if demo.returncode != 0:
        raise SystemExit(f"pipeline demo failed:\n{demo.stdout}{demo.stderr}")
    cli("run")  # the faulty deliveries are meant to fail: exit status 1 is expected
    status = cli("status")
    if status.returncode not in (0, 1):
        raise SystemExit(f"pipeline status failed:\n{status.stdout}{status.stderr}")


def correct_march(landed: Path) -> None:
    """A corrected March delivery: ten rows fewer and one income changed."""
    import openpyxl

    path = landed / "citizens_2025-03.xlsx"
    book = openpyxl.load_workbook(path)
    sheet = book.active
    sheet.delete_rows(sheet.max_row - 9, 10)
    headers = [c.value for c in sheet[1]]
    income = headers.index("Monthly Income") + 1
    sheet.cell(row=2, column=income, value=(sheet.cell(row=2, column=income).value or 0) + 250)
    book.save(path)


def full_height(driver: Any) -> None:
    """Grow the window to the page's content (Streamlit scrolls its main block)."""
    height = driver.execute_script(
        "const m = document.querySelector(\"[data-testid='stMain']\") || document.body;"
        "const s = document.querySelector(\"[data-testid='stSidebarContent']\");"
        "return Math.max(m.scrollHeight, s ? s.scrollHeight : 0, document.body.scrollHeight);")
    driver.set_window_size(WIDTH, min(max(int(height or 0) + 40, 900), 4000))
    time.sleep(1.0)  # let the charts re-layout to the new size


def wait_for(driver: Any, xpath: str, timeout: float = bs.WAIT_S) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))
    return wait.until(ec.visibility_of_element_located((By.XPATH, xpath)))


def settle(driver: Any) -> None:
    """No script run in progress and charts drawn: the page is still."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, bs.WAIT_S).until(lambda d: d.execute_script(
        "return !document.querySelector(\"[data-testid='stStatusWidget'] [data-testid='stStatusWidgetRunningIcon']\")"))
    time.sleep(1.5)  # Vega's enter transitions


def shoot(driver: Any, path: Path) -> None:
    settle(driver)
    full_height(driver)
    full_height(driver)  # charts laid out at the new width may have grown the page
    settle(driver)
    driver.save_screenshot(str(path))
    driver.set_window_size(WIDTH, 1000)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def take(server: bs.Server, out: Path, landed: Path) -> None:
    driver = bs.new_driver(WIDTH, 1000)
    try:
        driver.get(server.url + "/")
        wait_for(driver, bs.grid_cell_xpath("citizens", "2025-01"))
        wait_for(driver, "//*[@data-testid='stVegaLiteChart'][.//*[local-name()='path']"
                         "[contains(@aria-label, 'stage rows')]]")
        shoot(driver, out / "overview.png")

        # A month whose delivery failed validation: its attempts and invalid rows.
        driver.set_window_size(WIDTH, 1000)
        driver.get(server.url + "/month?dataset=citizens&period=2025-07")
        wait_for(driver, "//h3[contains(., 'citizens · 2025-07')]")
        time.sleep(1)
        shoot(driver, out / "month.png")

        correct_march(landed)
        driver.get(server.url + "/month?dataset=citizens&period=2025-03")
        wait_for(driver, "//h3[contains(., 'citizens · 2025-03')]")
        wait_for(driver, bs.button_xpath("Preview")).click()
        wait_for(driver, bs.metric_xpath("Rows after"))
        shoot(driver, out / "preview.png")
    finally:
        driver.quit()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "docs", help="folder for the PNGs (default: docs/)")
    args = p.parse_args()
    reason = bs.missing_browser()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="workbench-shots-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "WORKBENCH_DATA_DIR": str(root / "data"),
               "WORKBENCH_DB_URL": f"sqlite:///{root / 'data' / 'warehouse' / 'workbench.sqlite'}",
               "WORKBENCH_CONFIG": str(REPO / "datasets_config.yml"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        env.pop("WORKBENCH_TEST_JOB_GATE", None)  # jobs must run at once here
        print("building the demo warehouse …")
        build_warehouse(root, env)
        with bs.running_server(bs.APP, root, root / "streamlit.log", env) as server:
            take(server, args.out.resolve(), root / "data" / "landed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
