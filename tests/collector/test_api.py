"""The README's Python API example, run as written (with a smaller simulation)."""


def test_readme_python_api(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from acquisition.effects import amce
    from collector import Collector, Store, init_db
    from collector.io.export import export
    from collector.io.frames import pairs_frame
    from collector.serving.simulate import simulate

    init_db("data/deconfound.db", demo=True)
    store = Store("data/deconfound.db")
    row, token = store.add_annotator("Ada", group="experts", covariates={"lang": "en"})
    collector = Collector(store)
    pair = collector.next_pair(row["id"])
    collector.submit(row["id"], pair.served_pair_id, "left", strength=2, rationale="correct")
    assert callable(simulate) and callable(export)  # functions, not the modules of the same name
    simulate(store, labels=40)
    assert export(store, "trl", "out/trl.jsonl") > 0
    assert (tmp_path / "out" / "trl.jsonl.card.md").exists()
    table = amce(pairs_frame(store), by=["annotator_group"])
    assert set(table["annotator_group"]) == {"default", "experts"}
