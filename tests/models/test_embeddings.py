"""Tests for models.embeddings: shapes, normalisation, semantics, ordering and the on-disk cache."""

import sqlite3

import numpy as np
import pytest

from models.embeddings import DIM, Embedder, model_path

SENTENCES = [
    "A cat sits on the mat",
    "A kitten is sitting on a rug",
    "Quarterly tax filing deadlines",
]


@pytest.fixture(scope="module")
def embedder():
    """One in-memory embedder for the module, so the model is loaded once."""
    return Embedder()


def test_model_path_exists():
    path = model_path()
    assert path.is_dir()
    assert (path / "config.json").is_file()
    assert (path / "model.safetensors").is_file()


def test_shape_and_dtype(embedder):
    vecs = embedder.embed(SENTENCES)
    assert vecs.shape == (3, DIM) == (3, 384)
    assert vecs.dtype == np.float32
    assert embedder.embed([]).shape == (0, DIM)


def test_unit_norm(embedder):
    vecs = embedder.embed(SENTENCES + ["word", "a much longer text " * 40])
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_deterministic_across_batches(embedder):
    """Same vector whatever the batch it was padded in, and from the cache."""
    texts = ["Deterministic check", "Another, much longer sentence that forces extra padding."]
    alone = embedder.embed(texts[:1])
    fresh = Embedder(batch_size=8)  # model weights are reloaded from disk, not shared
    together = fresh.embed(texts)
    np.testing.assert_allclose(alone[0], together[0], atol=1e-5)
    np.testing.assert_array_equal(embedder.embed(texts[:1]), alone)


def test_semantic_sanity(embedder):
    cat, kitten, tax = embedder.embed(SENTENCES)
    assert float(cat @ kitten) > float(cat @ tax)
    assert float(cat @ kitten) > 0.5


def test_order_preserved_with_duplicates(embedder):
    texts = ["order one", "order two", "order one", "order three", "order two"]
    misses = embedder.cache_misses
    vecs = embedder.embed(texts)
    assert embedder.cache_misses - misses == 3  # each distinct text reaches the model once
    singles = np.stack([embedder.embed([t])[0] for t in texts])
    np.testing.assert_array_equal(vecs, singles)
    np.testing.assert_array_equal(vecs[0], vecs[2])
    assert not np.allclose(vecs[0], vecs[1])


def test_disk_cache_shared_between_instances(tmp_path):
    path = tmp_path / "cache" / "emb.sqlite"
    texts = ["disk one", "disk two", "disk one"]
    first = Embedder(cache_path=path)
    a = first.embed(texts)
    assert (first.cache_hits, first.cache_misses) == (0, 2)
    assert first.embed(texts[:2]).shape == (2, DIM)
    assert (first.cache_hits, first.cache_misses) == (2, 2)

    second = Embedder(cache_path=path)
    b = second.embed(texts)
    assert (second.cache_hits, second.cache_misses) == (2, 0)
    assert second._model is None  # everything came from the file; the model never loaded
    np.testing.assert_array_equal(a, b)

    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT text_hash, length(vector) FROM embeddings").fetchall()
    assert len(rows) == 2 and all(n == DIM * 4 for _, n in rows)


def test_an_interrupted_run_keeps_what_it_embedded(tmp_path, monkeypatch):
    path = tmp_path / "emb.sqlite"
    texts = [f"sentence number {i} about something" for i in range(10)]
    embedder = Embedder(cache_path=path, batch_size=2, flush_every=4)
    calls = {"n": 0}
    original = embedder._tokenizer

    def run_then_fail(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:  # the fourth batch dies (Ctrl-C, a killed worker...)
            raise KeyboardInterrupt
        return tokenizer(*args, **kwargs)

    embedder._load()
    tokenizer = embedder._tokenizer
    embedder._tokenizer = run_then_fail
    with pytest.raises(KeyboardInterrupt):
        embedder.embed(texts)
    assert original is None
    with sqlite3.connect(path) as db:
        kept = db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert kept == 4  # three batches of two ran; the first four were flushed
    fresh = Embedder(cache_path=path)
    fresh.embed(texts)
    assert (fresh.cache_hits, fresh.cache_misses) == (4, 6)


def test_the_progress_line_says_how_far_how_fast_and_how_long():
    from models.embeddings import progress_line

    assert progress_line(3_200, 124_780, 78.0) == "embedding 3,200/124,780 texts (3%), 41/s, ETA 49m24s"
    assert progress_line(500, 500, 12.4) == "embedding 500/500 texts (100%), 40/s, done in 12s"
    assert progress_line(10, 1_000_000, 1.0).endswith("ETA 27h46m")


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    """One export per test module (about 10 s on 2 cores), into a temporary folder."""
    import models.embeddings as emb

    folder = tmp_path_factory.mktemp("onnx")
    emb.onnx_model("onnx_int8", folder)
    return folder


_TEXTS = ["How do I repot a houseplant?", "Water it the day before, then loosen the root ball gently.",
          "Honestly, nobody really knows, so just do whatever feels right.", "Set up a Python virtual environment " * 20]


def test_onnx_fp32_matches_torch_and_int8_stays_close(onnx_dir, monkeypatch, embedder):
    import models.embeddings as emb

    monkeypatch.setattr(emb, "ONNX_DIR", onnx_dir)
    torch_vecs = embedder.embed(_TEXTS)
    fp32 = Embedder(backend="onnx").embed(_TEXTS)
    int8 = Embedder(backend="onnx_int8").embed(_TEXTS)
    assert fp32.shape == int8.shape == (len(_TEXTS), DIM)
    assert (np.sum(fp32 * torch_vecs, axis=1) > 0.9999).all()
    cos = np.sum(int8 * torch_vecs, axis=1)
    assert (cos > 0.95).all() and cos.mean() > 0.98
    assert not np.allclose(int8, torch_vecs, atol=1e-4)  # it really ran the quantised graph


def test_int8_vectors_never_mix_with_torch_vectors_in_one_cache(onnx_dir, monkeypatch, tmp_path):
    import models.embeddings as emb

    monkeypatch.setattr(emb, "ONNX_DIR", onnx_dir)
    cache = tmp_path / "cache.sqlite"
    assert Embedder(cache_path=cache, backend="onnx").cache_key("x") == Embedder(cache_path=cache).cache_key("x")
    Embedder(cache_path=cache, backend="onnx_int8").embed(_TEXTS[:2])
    again = Embedder(cache_path=cache)
    again.embed(_TEXTS[:2])
    assert again.cache_misses == 2  # the int8 vectors were not served as torch ones


def test_an_unknown_backend_is_refused_by_name():
    from acquisition.core.errors import DeconfoundError

    with pytest.raises(DeconfoundError, match="backend: must be one of torch, onnx, onnx_int8; got 'tf'"):
        Embedder(backend="tf")


def test_another_local_encoder_goes_through_the_same_interface(tmp_path):
    """A tiny randomly initialised BERT saved from a config stands in for a stronger encoder."""
    import shutil

    from transformers import BertConfig, BertModel

    folder = tmp_path / "tiny-encoder"
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        if (model_path() / name).exists():
            shutil.copy(model_path() / name, folder / name)
    cache = tmp_path / "cache.sqlite"
    tiny = Embedder(cache_path=cache, model_dir=folder)
    vecs = tiny.embed(["a sentence", "another one", "a sentence"])
    assert vecs.shape == (3, 32) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    assert np.allclose(vecs[0], vecs[2])
    assert Embedder(cache_path=cache).embed(["a sentence"]).shape == (1, DIM)  # MiniLM's vectors stay apart
    with pytest.raises(Exception, match="no config.json"):
        Embedder(model_dir=tmp_path)
