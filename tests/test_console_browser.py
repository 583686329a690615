"""The console in a real browser: Debian's headless Chromium, steered by Selenium through its chromedriver, against
the Procfile's web server and a real worker.

It signs in, watches a running campaign's progress bar move while the page refreshes itself, pauses and resumes
the campaign with its buttons, and retries a failed message. Screenshots land in test-artifacts/ for a person to
look at (docs/console.png is a copy of the first)."""

from __future__ import annotations

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.conftest import ADMIN_API_KEY, API_KEY, ARTIFACTS, CHROMIUM_FLAGS, auth, wait_for
from tests.test_failed_messages import fail, send

ROWS = 120
PACE = "20"  # messages a second for the mock's sender: the campaign runs for about 6 s


@pytest.fixture
def browser(chromium, chromedriver, monkeypatch):
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager downloads nothing: browser and driver are Debian's
    ARTIFACTS.mkdir(exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, "--window-size=1280,800"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


# The campaigns page reloads itself while one runs, so an element found a moment ago may be gone: each read or
# click below is tried again on the new page rather than failing on the old one.


def _row(driver, row_id: str):
    found = driver.find_elements(By.CSS_SELECTOR, f'tr[id="{row_id}"]')
    return found[0] if found else None


def _in_row(driver, row_id: str, read, missing):
    try:
        row = _row(driver, row_id)
        return read(row) if row is not None else missing
    except StaleElementReferenceException:
        return missing


def _progress(driver, batch_id: str) -> float:
    return _in_row(
        driver, batch_id, lambda row: float(row.find_element(By.TAG_NAME, "progress").get_attribute("value")), -1.0
    )


def _state(driver, batch_id: str) -> str:
    return _in_row(driver, batch_id, lambda row: row.find_element(By.CSS_SELECTOR, "td.state").text, "")


def _press(driver, row_id: str, label: str) -> None:
    def click(row) -> bool:
        row.find_element(By.XPATH, f".//button[text()='{label}']").click()
        return True

    wait_for(lambda: _in_row(driver, row_id, click, False), 10, what=f"{label} pressed")


def test_an_operator_watches_pauses_resumes_a_campaign_and_retries_a_failure(
    make_app, start_worker, start_web, browser
):
    client = make_app(SENDER_RATE_MOCK=PACE)
    failed_id = send(client, "browser-failed-1")
    fail(client, failed_id)  # before any worker runs, so nothing else claims it
    start_worker(SENDER_RATE_MOCK=PACE)
    api = start_web(SENDER_RATE_MOCK=PACE)
    rows = [
        {"recipient_phone": f"+55649{n:08d}", "external_id": f"browser_{n}", "variables": {"name": f"N{n}"}}
        for n in range(ROWS)
    ]
    answer = client.post("/v1/messages/bulk", json={"template": "Olá {{name}}", "messages": rows}, headers=auth())
    batch_id = answer.json["batch_id"]

    browser.get(f"{api}/console")
    browser.find_element(By.ID, "key").send_keys(ADMIN_API_KEY)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait_for(lambda: _row(browser, batch_id) is not None, 10, what="the campaigns page")
    started = wait_for(lambda: 0 < (p := _progress(browser, batch_id)) < 1 and p, 20, what="the campaign to start")
    # The page reloads itself while the campaign runs: the bar moves with nobody touching it.
    wait_for(lambda: _progress(browser, batch_id) > started, 15, what="the progress bar to move")
    browser.save_screenshot(str(ARTIFACTS / "console-campaign-running.png"))

    _press(browser, batch_id, "Pause")
    wait_for(lambda: _state(browser, batch_id) == "paused", 10, what="the campaign paused")
    assert client.get(f"/v1/batches/{batch_id}", headers=auth()).json["state"] == "paused"
    assert "pause done" in browser.find_element(By.CLASS_NAME, "flash").text
    browser.save_screenshot(str(ARTIFACTS / "console-campaign-paused.png"))

    _press(browser, batch_id, "Resume")
    wait_for(lambda: _state(browser, batch_id) in ("running", "completed"), 10, what="the campaign resumed")
    wait_for(lambda: _state(browser, batch_id) == "completed", 30, interval=0.5, what="the campaign to finish")
    assert _progress(browser, batch_id) == 1.0
    assert client.get(f"/v1/batches/{batch_id}", headers=auth()).json["counts"] == {"sent": ROWS}

    browser.find_element(By.LINK_TEXT, "Failed").click()
    wait_for(lambda: _row(browser, failed_id) is not None, 10, what="the failed message listed")
    browser.save_screenshot(str(ARTIFACTS / "console-failed.png"))
    assert "+5564999998888" not in browser.page_source and "Olá" not in browser.page_source
    _press(browser, failed_id, "Retry")
    wait_for(lambda: _row(browser, failed_id) is None, 10, what="the retried message to leave the list")
    message = f"/v1/messages/{failed_id}"
    wait_for(lambda: client.get(message, headers=auth(API_KEY)).json["status"] == "sent", 20, what="the retry sent")
