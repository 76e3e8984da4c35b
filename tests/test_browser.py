"""The annotator's path in a real browser: `streamlit run`, Playwright, Debian's Chromium."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from collector.setup import init_db
from collector.store import Store

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does")
    db = tmp_path / "browser.db"
    init_db(db, demo=True)
    s = Store(db)
    annotator, token = s.add_annotator("Browser tester", group="web")
    s.close()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, "DECONFOUND_DB": str(db)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + proc.stdout.read().decode()[-2000:])
    yield f"http://127.0.0.1:{port}", token, annotator, db
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _pair_number(page) -> int:
    caption = page.get_by_text(re.compile(r"Pair #\d+")).first
    expect(caption).to_be_visible(timeout=30000)
    return int(re.search(r"#(\d+)", caption.inner_text()).group(1))


def _wait_for_new_pair(page, previous: int) -> int:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            current = _pair_number(page)
            if current != previous:
                return current
        except Exception:
            pass
        time.sleep(0.2)
    raise AssertionError(f"pair {previous} was not replaced by a new one")


def test_annotator_labels_three_pairs_one_by_keyboard(server, tmp_path):
    url, token, annotator, db = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/?token={token}")
        first = _pair_number(page)
        page.get_by_label("Why? (optional, one sentence)").fill("more accurate")
        page.get_by_role("button", name=re.compile("A is better")).click()
        second = _wait_for_new_pair(page, first)
        page.get_by_role("button", name=re.compile("^Tie")).click()
        third = _wait_for_new_pair(page, second)
        page.get_by_text(re.compile(r"Pair #\d+")).first.click()  # focus the page, not an input
        page.keyboard.press("2")
        _wait_for_new_pair(page, third)
        page.screenshot(path=str(tmp_path / "annotate.png"), full_page=True)
        browser.close()

    s = Store(db)
    try:
        labels = {row["served_pair_id"]: row for row in s.labels()}
        assert set(labels) == {first, second, third}
        assert [labels[i]["choice"] for i in (first, second, third)] == ["left", "tie", "right"]
        assert labels[first]["rationale"] == "more accurate"
        for pair_id in (first, second, third):
            pair = s.served_pair(pair_id)
            assert pair["annotator_id"] == annotator["id"] and pair["annotator_group"] == "web"
            assert pair["status"] == "labelled" and pair["policy_name"] == "randomised_attributes"
            assert 0 < pair["propensity_score"] <= 1
    finally:
        s.close()
