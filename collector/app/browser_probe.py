"""What a browser sees of the annotator page, frame by frame: shared by the browser test and
the browser benchmark.

``PROBE`` (run in the page) records, in the animation frame after every change to the page,
which served pair it shows (the pair whose "A is better" button, keyed ``annotate_left_<id>``, is in the action bar), how
many elements Streamlit has greyed out as stale, and the scroll position; every keydown and
click records the pair whose action bar was on screen.
``paints`` counts, from those frames, how many times the page settled (nothing greyed) on a
view after an answer: 1 is the new pair drawn once; 2 is the old pair redrawn, then the new one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from collector.app import REPOSITORY

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]

PROBE = """
(() => {
  if (window.__probe) return;
  const shown = () => {
    const bar = document.querySelector('.st-key-annotate_actions');
    const button = bar && bar.querySelector('[class*="st-key-annotate_left_"]');
    const m = button && button.className.match(/st-key-annotate_left_(\\d+)/);
    return m ? Number(m[1]) : null;
  };
  const waiting = [];
  const probe = window.__probe = {frames: [], keys: [], shown,
    // resolves with the id of the next pair other than `otherThan` painted with nothing greyed out
    next: otherThan => new Promise(resolve => { waiting.push([otherThan, resolve]); record(); })};
  const main = () => document.querySelector('[data-testid="stMain"]');
  let pending = false;
  function record() {  // in the frame painted after a change: what the annotator sees
    pending = false;
    const m = main(), pair = shown(), stale = document.querySelectorAll('[data-stale="true"]').length;
    probe.frames.push([performance.now(), pair, stale, m ? m.scrollTop : -1]);
    if (probe.frames.length > 20000) probe.frames.splice(0, 10000);
    for (let i = waiting.length - 1; i >= 0; i--) {
      if (pair !== null && stale === 0 && pair !== waiting[i][0]) { waiting[i][1](pair); waiting.splice(i, 1); }
    }
  }
  new MutationObserver(() => { if (!pending) { pending = true; requestAnimationFrame(record); } })
    .observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
  document.addEventListener('keydown', e => probe.keys.push([performance.now(), e.key, shown()]), true);
  document.addEventListener('click', e => probe.keys.push([performance.now(), 'click', shown()]), true);
  record();
})();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_app(db: str | Path, env: dict[str, str] | None = None,
                  log: str | Path | None = None, script: str | Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """The app as ``make run`` serves it (``python -m collector.app.serve``), or ``streamlit run
    script``, over ``db`` on a free 127.0.0.1 port; yields ``(url, process)`` and stops it (by its
    PID) after."""
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    port = free_port()
    out: Any = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        # the app as `make run` serves it (its modules imported before the server opens), or a script
        [sys.executable, "-m", *(("streamlit", "run", str(script)) if script else ("collector.app.serve",)),
         "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPOSITORY, env={**os.environ, "DECONFOUND_DB": str(db), **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"streamlit did not start (exit code {proc.poll()})") from None
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()


def paints_after(frames: list[list[float]], since: float,
                 until: float = float("inf")) -> tuple[int, float | None, int | None]:
    """From ``PROBE`` frames: ``(paints, ms from since to the first settled frame on a new pair,
    that pair)`` between the event at ``since`` and ``until`` (``performance.now()`` ms)."""
    after = [f for f in frames if since <= f[0] < until]
    before = [f for f in frames if f[0] < since]
    start_pair = before[-1][1] if before else (after[0][1] if after else None)
    paints, previous, first_new = 0, (start_pair, False), None
    for t, pair, stale, _scroll in after:
        state = (pair, stale > 0)
        if state != previous and stale == 0:
            paints += 1
        if first_new is None and pair is not None and pair != start_pair and stale == 0:
            first_new = (t - since, int(pair))
        previous = state
    if first_new is None:
        return paints, None, None
    return paints, first_new[0], first_new[1]


def old_pair_redrawn(frames: list[list[float]], since: float, until: float, old: int) -> bool:
    """Whether, after the page started working on the press at ``since`` (something greyed
    out), it settled on the ``old`` pair again before ``until``: the double paint the
    annotator would read as a lost click."""
    working = False
    for t, pair, stale, _scroll in frames:
        if not since <= t < until:
            continue
        if stale > 0:
            working = True
        elif working and pair == old:
            return True
    return False


def child_pids(pid: int) -> list[int]:
    """The live child processes of ``pid`` (the app's trainer is one), from ``/proc``."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of one process so far (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
