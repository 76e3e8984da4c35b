"""The annotator's path in a real browser: `streamlit run`, Playwright, Debian's Chromium."""

import os
import re
import time

import pandas as pd
import pytest
from playwright.sync_api import expect, sync_playwright

from collector.app.browser_probe import CHROMIUM, CHROMIUM_FLAGS, PROBE, old_pair_redrawn, streamlit_app
from collector.jobs.simulate import SimulatedAnnotatorConfig, simulate
from collector.store import Store
from collector.store.create import init_db

pytestmark = pytest.mark.slow  # a real Streamlit server and Chromium

CHROMIUM, FLAGS = CHROMIUM, CHROMIUM_FLAGS


def _streamlit(db, env: dict[str, str] | None = None):
    """Start the app on a free port over ``db``; yields its URL and stops it (by its PID) after."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does")
    with streamlit_app(db, env) as (url, _proc):
        yield url


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
    """A database with 300 simulated labels (one group likes emoji) and two researcher accounts."""
    db = tmp_path / "research.db"
    init_db(db, demo=True)
    s = Store(db)
    s.activate_policy("randomised_attributes", {"attributes": ["list_format", "bold", "emoji"]})  # emoji: not a default
    simulate(s, labels=300, annotators=4, groups=["fans", "neutral"], seed=0,
             config=SimulatedAnnotatorConfig(group_effects={"fans": {"emoji": 1.5}}))
    s.add_researcher("alice", "correct horse battery")
    s.add_researcher("bob", "another long password")
    s.close()
    env = {"DECONFOUND_WORKER": "0", "DECONFOUND_DOWNLOAD_SECONDS": "1"}
    for url in _streamlit(db, env):
        yield url, db


def _attempts(db, name: str) -> int:
    s = Store(db)
    try:
        return len(s._all("SELECT id FROM login_attempts WHERE researcher = ?", [name]))
    finally:
        s.close()


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


def _labels(db) -> list[tuple[int, str]]:
    s = Store(db)
    try:
        return [(row["served_pair_id"], row["choice"]) for row in s.labels()]
    finally:
        s.close()


def _settle(page, other_than: int | None = None, timeout: float = 30) -> int:
    """Wait until the page shows a pair (other than ``other_than``) with nothing greyed out; its id."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = page.evaluate("() => [window.__probe.shown(), document.querySelectorAll('[data-stale=\"true\"]').length]")
        if state[0] is not None and state[1] == 0 and state[0] != other_than:
            return int(state[0])
        time.sleep(0.05)
    raise AssertionError(f"the page did not settle on a pair other than {other_than}")


def _open(browser, url, token, viewport, requests, **kwargs):
    context = browser.new_context(viewport=viewport, **kwargs)
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{url}/?token={token}")
    expect(page.get_by_text(re.compile(r"Pair #\d+")).first).to_be_visible(timeout=30000)
    page.evaluate(PROBE)
    return page


def _in_view(page, locator) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] and box["x"] >= 0 \
        and box["x"] + box["width"] <= size["width"]


def test_every_answer_lands_on_the_pair_shown(server, tmp_path):
    """Enter in the reason field, a key pressed twice at once and 150 ms apart, a stale second
    tab: the database holds exactly the labels meant, each on the pair on screen."""
    url, token, annotator, db = server
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = _open(browser, url, token, {"width": 1280, "height": 800}, requests)
        first = _settle(page)
        for name in ("A is better", "B is better", "Tie", "Both bad", "Skip"):  # no scrolling needed
            assert _in_view(page, page.get_by_role("button", name=re.compile(f"^{name}")).first), name
        assert _in_view(page, page.get_by_text("Request", exact=True))
        expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)  # annotators see only their page

        reason = page.get_by_label("Why? (optional, one sentence)")
        reason.fill("clearer 1")  # a shortcut key typed into the field is text, not an answer
        reason.press("Enter")  # Enter never submits
        time.sleep(1.5)
        assert _labels(db) == [] and _settle(page) == first
        assert reason.input_value() == "clearer 1"

        page.get_by_text(re.compile(r"Pair #\d+")).first.click()  # focus the page, not the field
        page.keyboard.press("1")
        page.keyboard.press("1")  # twice at once: the second press still sees the first pair
        second = _settle(page, other_than=first)
        assert _labels(db) == [(first, "left")]
        assert [k[2] for k in page.evaluate("window.__probe.keys") if k[1] == "1"][-2:] == [first, first]

        page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollTo(0, 400)")
        time.sleep(1.2)  # the annotator reads for a while
        page.keyboard.press("2")
        time.sleep(0.15)
        page.keyboard.press("4")  # 150 ms later: lands on whichever pair was on screen then
        presses = [k for k in page.evaluate("window.__probe.keys") if k[1] in ("2", "4")][-2:]
        _settle(page, other_than=presses[1][2])
        meant = [(presses[0][2], "right")] + ([(presses[1][2], "both_bad")] if presses[1][2] != presses[0][2] else [])
        assert presses[0][2] == second
        assert _labels(db) == [(first, "left"), *meant]
        assert page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollTop") == 0  # next pair from the top
        frames = page.evaluate("window.__probe.frames")
        assert not old_pair_redrawn(frames, presses[0][0], presses[1][0], second), frames  # one paint

        current = _settle(page)
        tab2 = _open(browser, url, token, {"width": 1280, "height": 800}, requests)
        assert _settle(tab2) == current
        page.keyboard.press("3")  # tab 1 answers the pair both tabs show
        following = _settle(page, other_than=current)
        tab2.get_by_role("button", name=re.compile("^B is better")).click()  # tab 2 still shows `current`
        expect(tab2.get_by_text(re.compile("already answered .* in another tab"))).to_be_visible(timeout=30000)
        assert _settle(tab2) == following
        labels = _labels(db)
        assert labels[-1] == (current, "tie") and following not in {pair for pair, _ in labels}

        s = Store(db)
        try:
            latency = s.labels()[1]["latency_ms"]  # pair `second`: read for >= 1.2 s, then answered
            rows = [s.served_pair(pair) for pair, _ in labels]
        finally:
            s.close()
        assert 1200 <= latency <= 6000, latency
        s = Store(db)
        try:
            assert s.get_meta("server_url") == f"{url}/"  # `annotator add` prints links with it
        finally:
            s.close()
        assert all(r["annotator_id"] == annotator["id"] and r["status"] == "labelled" for r in rows)
        page.screenshot(path=str(tmp_path / "annotate-desktop.png"))

        phone = _open(browser, url, token, {"width": 390, "height": 844}, requests, is_mobile=True, has_touch=True)
        _settle(phone)
        for name in ("A is better", "B is better", "Tie", "Both bad", "Skip"):
            assert _in_view(phone, phone.get_by_role("button", name=re.compile(f"^{name}")).first), name
        phone.screenshot(path=str(tmp_path / "annotate-phone.png"))
        browser.close()
    outside = [r for r in requests if not r.startswith((url, "data:", "blob:"))]
    assert outside == []  # nothing leaves the machine: no font host, no CDN


def test_researcher_sees_the_effects_and_downloads_an_export(research_server, tmp_path):
    url, db = research_server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        # six wrong passwords for bob: the sixth is throttled, and so is bob's right password then
        page.goto(f"{url}/dashboard")

        def try_bob(password: str, attempt: int) -> None:
            page.get_by_label("Researcher name").fill("bob")
            page.get_by_label("Researcher password").fill(password)
            page.get_by_role("button", name="Enter").click()
            deadline = time.time() + 30  # one answer per click: wait until the server has taken it
            while _attempts(db, "bob") < attempt + 1 and time.time() < deadline:
                time.sleep(0.1)

        for attempt in range(6):
            try_bob(f"guess {attempt}", attempt)
            message = "Wrong name or password" if attempt < 5 else "Too many failed logins; try again in"
            expect(page.get_by_text(message)).to_be_visible(timeout=30000)
        try_bob("another long password", 6)
        expect(page.get_by_text("Too many failed logins; try again in")).to_be_visible(timeout=30000)
        page.get_by_label("Researcher name").fill("alice")
        page.get_by_label("Researcher password").fill("correct horse battery")
        page.get_by_role("button", name="Enter").click()
        expect(page.get_by_text("Collection progress")).to_be_visible(timeout=30000)
        page.reload()  # the session cookie keeps the login
        expect(page.get_by_text("Collection progress")).to_be_visible(timeout=30000)
        expect(page.get_by_label("Researcher password")).to_have_count(0)
        page.get_by_role("tab", name="Effects").click()
        expect(page.get_by_text(re.compile(r"Attribute effects \(AMCE"))).to_be_visible(timeout=30000)
        expect(page.get_by_text(re.compile(r"^annotator group: fans \(n="))).to_be_visible()  # legend, with n
        expect(page.get_by_text(re.compile(r"^n=\d+")).first).to_be_visible()  # labels behind each estimate
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        page.get_by_role("link", name="Data").click()  # same session: no second login
        download_button = page.locator(".st-key-data_download_trl_jsonl button")  # by key, as AppTests do
        expect(download_button).to_be_visible(timeout=30000)
        with page.expect_download(timeout=30000) as download:
            download_button.click()
        path = tmp_path / download.value.suggested_filename
        download.value.save_as(path)
        link = download.value.url
        # the export's /media link, fetched without the researcher's session, is refused
        stranger = browser.new_context().request
        deadline, status = time.time() + 20, 200
        while status == 200 and time.time() < deadline:
            time.sleep(0.5)
            status = stranger.get(link).status
        assert "/media/" in link and status == 404
        browser.close()

    exported = pd.read_json(path, lines=True)
    s = Store(db)
    try:
        decisive = [label for label in s.labels() if label["choice"] in ("left", "right")]
    finally:
        s.close()
    assert path.name == "deconfound-trl.jsonl" and len(exported) == len(decisive)
    assert {"prompt", "chosen", "rejected", "propensity_score", "arm"} <= set(exported.columns)
    s = Store(db)
    try:
        actions = [(row["researcher"], row["action"]) for row in s.audit_log()]
        attempts = [row["outcome"] for row in s._all("SELECT outcome FROM login_attempts WHERE researcher = 'bob'")]
    finally:
        s.close()
    assert ("alice", "exported") in actions and ("alice", "login") in actions
    assert attempts == ["failed"] * 5 + ["throttled"] * 2


def test_a_prolific_participant_labels_three_pairs_and_sees_the_completion_screen(tmp_path):
    from collector.serving.study import update_study_config

    db = tmp_path / "crowd.db"
    init_db(db, demo=True)
    s = Store(db)
    update_study_config(s, {"crowd_entry": "prolific", "quota": 3, "objective": "Judge which response is more helpful",
                            "completion_message": "Thank you, all done.", "completion_code": "C1A2B3",
                            "completion_url": "https://app.prolific.com/submissions/complete?cc=C1A2B3"})
    s.close()
    entry = "/?PROLIFIC_PID=5f1a2b3c4d5e6f7a8b9c0d1e&STUDY_ID=65aa00bb11cc22dd33ee44ff&SESSION_ID=sess_42"
    for url in _streamlit(db, {"DECONFOUND_WORKER": "0"}):
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url + entry)
            expect(page.get_by_text("Judge which response is more helpful")).to_be_visible(timeout=30000)
            for n, button in enumerate(("A is better", "B is better", "Tie")):
                expect(page.get_by_text(f"{n} of 3 labels")).to_be_visible(timeout=30000)
                current = _pair_number(page)
                page.get_by_role("button", name=re.compile(f"^{button}")).first.click()
                if n < 2:
                    _wait_for_new_pair(page, current)
            expect(page.get_by_text("Thank you, all done.")).to_be_visible(timeout=30000)
            expect(page.get_by_text("C1A2B3").first).to_be_visible()
            link = page.get_by_role("link", name="Return to the study platform")
            assert link.get_attribute("href").endswith("cc=C1A2B3")
            page.reload()  # coming back with the same URL: still done, nobody new
            expect(page.get_by_text("Thank you, all done.")).to_be_visible(timeout=30000)
            browser.close()
    s = Store(db)
    try:
        crowd = [a for a in s.annotators() if a["external_id"]]
        labels = s.labels()
    finally:
        s.close()
    assert len(crowd) == 1 and crowd[0]["name"] == "Participant 1"
    assert [row["choice"] for row in labels] == ["left", "right", "tie"]
