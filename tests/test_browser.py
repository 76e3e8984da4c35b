"""The annotator's path in a real browser: `streamlit run`, Playwright, Debian's Chromium."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import expect, sync_playwright

from collector.setup import init_db
from collector.simulate import SimulatedAnnotatorConfig, simulate
from collector.store import Store

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _streamlit(db, env: dict[str, str] | None = None):
    """Start the app on a free port over ``db``; yields its URL and stops it (by its PID) after."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, "DECONFOUND_DB": str(db), **(env or {})},
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
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def server(tmp_path):
    db = tmp_path / "browser.db"
    init_db(db, demo=True)
    s = Store(db)
    annotator, token = s.add_annotator("Browser tester", group="web")
    s.close()
    for url in _streamlit(db):
        yield url, token, annotator, db


@pytest.fixture
def research_server(tmp_path):
    """A database with 300 simulated labels (one group likes emoji) and a researcher password."""
    db = tmp_path / "research.db"
    init_db(db, demo=True)
    s = Store(db)
    simulate(s, labels=300, annotators=4, groups=["fans", "neutral"], seed=0,
             config=SimulatedAnnotatorConfig(group_effects={"fans": {"emoji": 1.5}}))
    s.close()
    for url in _streamlit(db, {"DECONFOUND_RESEARCHER_PASSWORD": "s3cret", "DECONFOUND_WORKER": "0"}):
        yield url, db


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


def test_researcher_sees_the_effects_and_downloads_an_export(research_server, tmp_path):
    url, db = research_server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.goto(f"{url}/dashboard")
        page.get_by_label("Researcher password").fill("s3cret")
        page.get_by_role("button", name="Enter").click()
        expect(page.get_by_text("Collection progress")).to_be_visible(timeout=30000)
        page.get_by_role("tab", name="Effects").click()
        expect(page.get_by_text(re.compile(r"Attribute effects \(AMCE"))).to_be_visible(timeout=30000)
        expect(page.get_by_text(re.compile(r"^annotator group: fans \(n="))).to_be_visible()  # legend, with n
        expect(page.get_by_text(re.compile(r"^n=\d+")).first).to_be_visible()  # labels behind each estimate
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        page.get_by_role("link", name="Data").click()  # same session: no second login
        download_button = page.get_by_role("button", name="JSONL").first
        expect(download_button).to_be_visible(timeout=30000)
        with page.expect_download(timeout=30000) as download:
            download_button.click()
        path = tmp_path / download.value.suggested_filename
        download.value.save_as(path)
        browser.close()

    exported = pd.read_json(path, lines=True)
    s = Store(db)
    try:
        decisive = [label for label in s.labels() if label["choice"] in ("left", "right")]
    finally:
        s.close()
    assert path.name == "deconfound-trl.jsonl" and len(exported) == len(decisive)
    assert {"prompt", "chosen", "rejected", "propensity_score", "arm"} <= set(exported.columns)
