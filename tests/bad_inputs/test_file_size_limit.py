"""A full disk (here: a file-size limit, ``ulimit -f``) fails the command with one error line and
leaves every table as it was, instead of passing for success."""

import json
import resource
import subprocess
import sys

from collector.store.create import init_db


def test_an_import_past_the_file_size_limit_fails_and_saves_nothing(tmp_path):
    db = tmp_path / "d.db"
    init_db(db)
    data = tmp_path / "big.jsonl"
    with open(data, "w", encoding="utf-8") as handle:
        for i in range(3000):
            handle.write(json.dumps({"prompt": f"Question {i}? " + "context " * 40,
                                     "chosen": "A careful answer. " * 30 + str(i), "rejected": "No. " * 30 + str(i)}) + "\n")
    before = _rows(db)
    limit = db.stat().st_size + 256 * 1024  # the database may grow by a quarter of a megabyte, no more

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "collector", "import", str(data), "--db", str(db), "--no-embed"],
                          capture_output=True, text=True, preexec_fn=cap, timeout=300)
    assert done.returncode == 1, (done.returncode, done.stdout[-500:], done.stderr[-500:])
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Nothing was saved" in errors[0] and "Traceback" not in done.stderr
    assert _rows(db) == before  # the import's transaction was rolled back: no row of it is there


def _rows(db) -> dict[str, int]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f"SELECT count(*) FROM [{t}]").fetchone()[0] for t in tables}
    finally:
        conn.close()
