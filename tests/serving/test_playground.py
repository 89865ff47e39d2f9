"""The playground and runs page in a real headless Chromium (Debian's `chromium`, driven by Playwright): the
page lists the served runs, a sent message streams tokens into the reply, a task run shows its label, and the
runs page draws every run's loss curve. Writes a screenshot."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tests.serving.live import start_server


def chromium_path() -> str | None:
    for name in (os.environ.get("LMFORGE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def page(served_runs):
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    browser_path = chromium_path()
    if browser_path is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run installs it)")
    server = start_server([served_runs["chat"], served_runs["sent"]], threads=1)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page()
        tab.goto(server.url + "/")
        yield tab
        browser.close()
    server.stop()


def test_chat_streams_tokens_into_the_page(page, tmp_path_factory):
    page.wait_for_selector("#model option[value=chat]", state="attached")
    assert page.input_value("#model") == "chat"
    page.fill("#temperature", "0")
    page.fill("#prompt", "what is your name")
    page.click("#send")
    page.wait_for_function("document.querySelectorAll('.reply .tok').length > 1")  # tokens arrive one by one
    page.wait_for_function("document.getElementById('status').textContent.startsWith('finish')")
    reply = page.inner_text(".reply")
    assert "my name is forge" in reply
    titles = page.eval_on_selector_all(".reply .tok", "els => els.map(e => e.title)")
    assert all(t.startswith("p=") for t in titles)      # token probabilities on hover
    shot = Path(os.environ.get("LMFORGE_SCREENSHOT_DIR") or tmp_path_factory.mktemp("shots")) / "playground.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_task_run_and_runs_page(page):
    page.select_option("#model", "sent")
    page.fill("#prompt", "it was great and lovely")
    page.click("#send")
    page.wait_for_selector(".card .prob")
    assert "label: pos" in page.inner_text(".card")
    page.click("#tab-runs")
    page.wait_for_selector(".run svg path")
    cards = page.inner_text("#runs")
    assert "chat" in cards and "sent" in cards
    paths = page.eval_on_selector_all(".run svg path", "els => els.map(e => e.getAttribute('d'))")
    assert any(d and d.count("L") > 3 for d in paths)   # the chat run's loss curve
