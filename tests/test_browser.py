"""The HTML report and the compare page in a real browser: headless Chromium (Debian's
`chromium` and `chromium-driver`, driven by selenium), with no console errors, no network
request of any kind, every chart drawn, and a screenshot of the first screen kept.

Screenshots go to pytest's tmp folder, or to RPB_SCREENSHOTS when it names a folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.prereqs import require_command
from tests.test_conclusions import _rich_bundle

pytestmark = pytest.mark.browser
CHROMEDRIVER = "/usr/bin/chromedriver"
EXPECTED_REPORT_CHARTS = {
    "Chart: start-up against kernel time",
    "Chart: sum_squares, size sweep",
    "Chart: parallel, parallel speed-up and efficiency against P",
    "Chart: serving_api, latency percentiles per request rate",
    *(
        f"Chart: {task}, median {what} per implementation"
        for task, what in (
            ("sum_squares", "time per iteration"),
            ("parallel", "time per iteration"),
            ("concurrency", "time per iteration"),
            ("startup", "wall time per process"),
            ("serving_api", "time per request at saturation"),
        )
    ),
}


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    require_command("chromium", "chromium", "The browser test")
    require_command("chromedriver", "chromium-driver", "The browser test")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield d
    finally:
        d.quit()


def _screenshots(tmp_path: Path) -> Path:
    folder = os.environ.get("RPB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path


def _open(driver: Any, page: Path) -> tuple[list[dict], list[str]]:
    """Load `page` and return the console messages and every URL the page requested besides
    its own file."""
    driver.get_log("browser")  # start both logs empty
    driver.get_log("performance")
    driver.get(page.as_uri())
    driver.execute_script("return document.readyState")
    console = driver.get_log("browser")
    requests = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            url = msg["params"].get("request", {}).get("url") or msg["params"].get("url", "")
            if url != page.as_uri():
                requests.append(url)
    return console, requests


def _charts(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    svgs = driver.find_elements(By.CSS_SELECTOR, "svg[role=img]")
    drawn = [s for s in svgs if s.size["width"] > 100 and s.size["height"] > 40]
    assert len(drawn) == len(svgs), "a chart is not drawn"
    return [s.get_attribute("aria-label") for s in svgs]


def test_report_in_chromium(driver: Any, tmp_path: Path) -> None:
    bundle = _rich_bundle(tmp_path / "results")
    r = CliRunner().invoke(app, ["report", str(bundle)])
    assert r.exit_code == 0, r.output
    page = bundle / "report.html"
    console, requests = _open(driver, page)
    assert console == [], console
    assert requests == [], requests
    labels = _charts(driver)
    assert set(labels) == EXPECTED_REPORT_CHARTS
    assert len(labels) == len(EXPECTED_REPORT_CHARTS)
    heading = driver.find_element("css selector", "h2").text
    assert heading == "Summary: where Rust pays off"
    shot = _screenshots(tmp_path) / "report-first-screen.png"
    assert driver.save_screenshot(str(shot))
    print(f"screenshot: {shot}")


def test_compare_page_in_chromium(driver: Any, tmp_path: Path) -> None:
    ref = _rich_bundle(tmp_path / "ref")
    new = _rich_bundle(tmp_path / "new", scale=1.2)
    out = tmp_path / "compare.html"
    r = CliRunner().invoke(app, ["compare", str(ref), str(new), "--html", str(out)])
    assert r.exit_code == 0, r.output
    console, requests = _open(driver, out)
    assert console == [], console
    assert requests == [], requests
    labels = _charts(driver)
    tasks = ("sum_squares", "parallel", "concurrency", "startup", "serving_api")
    assert set(labels) == {f"Chart: {t}, speed-ups in each bundle" for t in tasks}
    shot = _screenshots(tmp_path) / "compare-first-screen.png"
    assert driver.save_screenshot(str(shot))
    print(f"screenshot: {shot}")


def test_the_checks_catch_a_request_and_a_console_error(driver: Any, tmp_path: Path) -> None:
    """The two checks above can fail: a page that fetches an image and throws is caught."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="http://192.0.2.1/x.png" alt="">'
        "<script>throw new Error('boom')</script></body></html>"
    )
    console, requests = _open(driver, page)
    assert requests == ["http://192.0.2.1/x.png"]
    assert any("boom" in m["message"] for m in console)
