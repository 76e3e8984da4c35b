"""Boot: how long until a person sees something, against a bare Streamlit page in the same run.

Every figure is the wall time from the navigation to the first paint of the content in
Chromium (Playwright, Debian's /usr/bin/chromium), on a freshly started server:

- a bare Streamlit page (`st.write`), the floor on this machine;
- the annotator page on a database of `--responses` base responses (`bench_snapshot`'s pool,
  with the pool's columns saved beside it as `import` leaves them), the first visitor (the server
  builds its policy) and a second, new session;
- the demo database: from "Sign up and start" to the first pair.

The app is served as `make run` serves it (`python -m collector.app.serve`, which imports the
app's modules before the server opens its port); the time from process start to an open port is
printed for both. The trainer runs beside the app as `make run` starts it
(``DECONFOUND_WORKER=1``), on the same cores; its CPU seconds and RSS are printed.

It prints the server's resident memory after each and the ratios to the bare page. Targets
(issue 16): within 1.5x of the bare page, under 500 MB, the first pair within 2 s of signing up;
the trainer was running. Exits 1 when one misses.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from collector.app.browser_probe import CHROMIUM, CHROMIUM_FLAGS, child_pids, cpu_seconds, streamlit_app
from collector.benchmarks.speed.bench_snapshot import fill
from collector.benchmarks.speed.targets import Targets
from collector.serving.snapshots import build_snapshot
from collector.store import Store
from collector.store.create import init_db

BARE = 'import streamlit as st\nst.write("Hello from a bare page")\n'


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


async def _time_to(url: str, selector: str, action=None) -> float:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
        started = time.monotonic()
        await page.goto(url)
        if action is not None:
            await action(page)
            started = time.monotonic()  # from the click
            await page.wait_for_selector(selector, timeout=120_000)
        else:
            await page.wait_for_selector(selector, timeout=120_000)
        seconds = time.monotonic() - started
        await browser.close()
        return seconds


def trainer_state(server_pid: int) -> tuple[int, float, float]:
    """The server's children (the trainer ``make run`` starts), their CPU seconds and RSS (MB)."""
    pids = child_pids(server_pid)
    rss = 0.0
    for pid in pids:
        try:
            rss += rss_mb(pid)
        except OSError:
            pass
    return len(pids), sum(cpu_seconds(p) for p in pids), rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="fresh servers per figure; medians are printed")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"medians of {args.repeats} fresh servers", flush=True)
    app_env = {"DECONFOUND_WORKER": "1"}  # as `make run`: the trainer starts with the app, on the same cores
    floors: list[float] = []
    firsts: list[float] = []
    agains: list[float] = []
    signups: list[float] = []
    rss: dict[str, float] = {}
    ready: dict[str, list[float]] = {"bare": [], "app": []}  # process start to the port open
    trainers: list[tuple[int, float, float]] = []  # children, CPU s, RSS MB at the end of each app boot
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare.py"
        bare.write_text(BARE)
        empty = Path(tmp) / "empty.db"
        init_db(empty)
        db = Path(tmp) / "big.db"
        fill(db, args.responses)
        build_snapshot(db)  # what `import` leaves beside a database it filled
        store = Store(db)
        tokens = [store.add_annotator(f"boot-{i}")[1] for i in range(2 * args.repeats)]
        store.close()
        demo = Path(tmp) / "demo.db"
        init_db(demo, demo=True)

        async def sign_up(page) -> None:
            await page.wait_for_selector(".st-key-annotate_signup_name input", timeout=120_000)
            await page.fill(".st-key-annotate_signup_name input", f"newcomer {len(signups)}")
            await page.click(".st-key-annotate_signup button")

        for r in range(args.repeats):
            started = time.monotonic()
            with streamlit_app(empty, {"DECONFOUND_WORKER": "0"}, script=bare) as (url, proc):
                ready["bare"].append(time.monotonic() - started)
                floors.append(asyncio.run(_time_to(url, "text=Hello from a bare page")))
                rss["bare"] = rss_mb(proc.pid)
            started = time.monotonic()
            with streamlit_app(db, app_env) as (url, proc):
                ready["app"].append(time.monotonic() - started)
                firsts.append(asyncio.run(_time_to(f"{url}/?token={tokens[2 * r]}", ".st-key-annotate_actions")))
                rss["first"] = rss_mb(proc.pid)
                agains.append(asyncio.run(_time_to(f"{url}/?token={tokens[2 * r + 1]}", ".st-key-annotate_actions")))
                rss["again"] = rss_mb(proc.pid)
                trainers.append(trainer_state(proc.pid))
            with streamlit_app(demo, app_env) as (url, proc):
                signups.append(asyncio.run(_time_to(url, ".st-key-annotate_actions", sign_up)))
                rss["demo"] = rss_mb(proc.pid)
            print(f"  run {r + 1}: bare {floors[-1]:.2f} s, first visitor {firsts[-1]:.2f} s, new session "
                  f"{agains[-1]:.2f} s, demo sign-up to first pair {signups[-1]:.2f} s", flush=True)
    floor, first, again = statistics.median(floors), statistics.median(firsts), statistics.median(agains)
    print(f"server start to its port open: bare {statistics.median(ready['bare']):.2f} s, the app "
          f"{statistics.median(ready['app']):.2f} s (it imports its modules before opening)")
    print(f"bare Streamlit page: painted in {floor:.2f} s, server RSS {rss['bare']:.0f} MB")
    print(f"{args.responses:,} responses, first visitor: annotator page painted in {first:.2f} s "
          f"({first / floor:.1f}x the bare page), server RSS {rss['first']:.0f} MB")
    print(f"{args.responses:,} responses, a new session: painted in {again:.2f} s ({again / floor:.1f}x), "
          f"server RSS {rss['again']:.0f} MB")
    print(f"demo database: first pair {statistics.median(signups):.2f} s after 'Sign up and start', "
          f"server RSS {rss['demo']:.0f} MB")
    print(f"the trainer beside each app boot: {', '.join(f'{n} process(es), {c:.1f} s CPU, {m:.0f} MB' for n, c, m in trainers)}")
    targets = Targets("boot")
    targets.happened("boots with the trainer running beside the app", sum(n > 0 for n, _c, _m in trainers), "boots")
    targets.at_most("annotator page, first visitor, against the bare page", first / floor, 1.5, "x")
    targets.at_most("annotator page, a new session, against the bare page", again / floor, 1.5, "x")
    targets.at_most("server RSS, first visitor", rss["first"], 500, "MB")
    targets.at_most("demo: sign-up to first pair", statistics.median(signups), 2, "s")
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
