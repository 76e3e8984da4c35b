"""Take the README's pictures of the annotator page (desktop 1280x800 and a 390x844 phone)
from a fresh demo database: ``python -m collector.app.screenshots``."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

from collector.app import REPOSITORY
from collector.app.browser_probe import CHROMIUM, CHROMIUM_FLAGS, PROBE, streamlit_app
from collector.store import Store
from collector.store.create import init_db

DOCS = REPOSITORY / "docs"


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "shots.db"
        init_db(db, demo=True)
        store = Store(db)
        _row, token = store.add_annotator("Ada", group="experts")
        store.close()
        with streamlit_app(db, {"DECONFOUND_WORKER": "0"}) as (url, _proc), sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{url}/?token={token}")
            page.get_by_text(re.compile(r"Pair #\d+")).first.wait_for(timeout=30000)
            page.evaluate(PROBE)
            page.keyboard.press("1")  # one answer, so the feedback line shows
            page.evaluate("window.__probe.next(window.__probe.shown())")
            time.sleep(1.0)
            page.screenshot(path=str(DOCS / "annotate.png"))
            phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            phone.goto(f"{url}/?token={token}")
            phone.get_by_text(re.compile(r"Pair #\d+")).first.wait_for(timeout=30000)
            time.sleep(1.0)
            phone.screenshot(path=str(DOCS / "annotate-phone.png"))
            browser.close()
    print(f"wrote {DOCS / 'annotate.png'} and {DOCS / 'annotate-phone.png'}")


if __name__ == "__main__":
    main()
