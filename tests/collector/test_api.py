"""The README's Python block, run as written."""

import re

from collector.app import REPOSITORY


def test_readme_python_block_runs(tmp_path, monkeypatch):
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    store = namespace["store"]
    assert store.label_count() == 201  # the label given by hand and 200 simulated ones
    assert (tmp_path / "out" / "trl.jsonl").stat().st_size > 0
    assert (tmp_path / "out" / "trl.jsonl.card.md").read_text().split("---\n\n", 1)[1].startswith("# Dataset card")
    store.close()
