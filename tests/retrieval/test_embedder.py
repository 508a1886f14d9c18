"""Embedders without the real model: hashing double, lazy loading, configuration, error messages."""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neuralrp.retrieval import embedder as emb_mod
from neuralrp.retrieval.embedder import (
    E5_DIM,
    E5_ID,
    MINILM_DIM,
    MINILM_ID,
    MINILM_TOKENIZER_SHA256,
    MPNET_DIM,
    MPNET_ID,
    Embedder,
    EmbedderUnavailable,
    HashEmbedder,
    LazyEmbedder,
    MpnetEmbedder,
    OnnxMiniLM,
    l2_normalize,
    make_embedder,
    tokenizer_path,
)


def test_hash_embedder_is_deterministic_normalized_and_word_based() -> None:
    e = HashEmbedder(384)
    vecs = e.embed(["the old wyrm", "The OLD wyrm!", "stock market prices", ""])
    assert vecs.shape == (4, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs[:3], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(vecs[0], vecs[1])
    assert vecs[0] @ vecs[2] < 0.5
    assert not vecs[3].any()
    np.testing.assert_array_equal(HashEmbedder(384).embed(["the old wyrm"])[0], vecs[0])
    assert e.model_id == "hash-384" and isinstance(e, Embedder)


def test_l2_normalize_keeps_zero_rows() -> None:
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


class GatedFactory:
    """A factory that blocks until released, like a model that takes a while to load."""

    def __init__(self, result: Any = None, error: BaseException | None = None) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.result = result if result is not None else HashEmbedder(384)
        self.error = error
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        self.started.set()
        self.release.wait(10)
        if self.error is not None:
            raise self.error
        return self.result


def test_lazy_embedder_loads_in_background_and_flips_ready() -> None:
    factory = GatedFactory()
    lazy = LazyEmbedder(factory, model_id="hash-384", dim=384)
    assert not lazy.ready and factory.calls == 0  # nothing happens at construction (server start)
    lazy.warm_up()  # returns while the "model" is still loading
    assert factory.started.wait(5)
    assert not lazy.ready
    assert lazy.wait(0.01) is False
    lazy.warm_up()  # a second call does not start another load
    factory.release.set()
    assert lazy.wait(5) is True and lazy.ready
    assert factory.calls == 1
    np.testing.assert_array_equal(lazy.embed(["a b"]), HashEmbedder(384).embed(["a b"]))


def test_lazy_embedder_first_embed_loads_and_blocks() -> None:
    factory = GatedFactory()
    factory.release.set()
    lazy = LazyEmbedder(factory, model_id="hash-384", dim=384)
    assert lazy.embed(["x"]).shape == (1, 384)
    assert lazy.ready and factory.calls == 1


def test_lazy_embedder_load_failure_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    factory = GatedFactory(error=EmbedderUnavailable("no model here"))
    factory.release.set()
    lazy = LazyEmbedder(factory, model_id="broken", dim=384)
    with caplog.at_level(logging.WARNING, logger="neuralrp.retrieval.embedder"):
        assert lazy.wait(5) is False
    assert "no model here" in caplog.text
    assert isinstance(lazy.error, EmbedderUnavailable)
    with pytest.raises(EmbedderUnavailable, match="failed to load: no model here"):
        lazy.embed(["x"])


def test_lazy_embedder_checks_dimension() -> None:
    lazy = LazyEmbedder(lambda: HashEmbedder(768), model_id="hash", dim=384)
    assert lazy.wait(5) is False
    assert "expected 384" in str(lazy.error)


def test_make_embedder_follows_settings(make_settings: Any) -> None:
    default = make_embedder(make_settings())
    assert (default.model_id, default.dim, default.ready) == (E5_ID, E5_DIM, False)
    minilm = make_embedder(make_settings(embeddings={"model": "minilm"}))
    assert (minilm.model_id, minilm.dim, minilm.ready) == (MINILM_ID, MINILM_DIM, False)
    mpnet = make_embedder(make_settings(embeddings={"model": "mpnet"}))
    assert (mpnet.model_id, mpnet.dim, mpnet.ready) == (MPNET_ID, MPNET_DIM, False)


def test_mpnet_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(EmbedderUnavailable, match=r"neuralrp\[mpnet\]"):
        MpnetEmbedder(tmp_path / "mpnet").embed(["x"])
    assert MpnetEmbedder(tmp_path).embed([]).shape == (0, 768)


def test_vendored_tokenizer_hash() -> None:
    assert hashlib.sha256(tokenizer_path().read_bytes()).hexdigest() == MINILM_TOKENIZER_SHA256


def test_tampered_tokenizer_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "tokenizer.json"
    fake.write_text("{}")
    monkeypatch.setattr(emb_mod, "tokenizer_path", lambda: fake)
    with pytest.raises(EmbedderUnavailable, match="sha256"):
        OnnxMiniLM().load()


def test_empty_input_needs_no_model() -> None:
    assert OnnxMiniLM().embed([]).shape == (0, MINILM_DIM)
