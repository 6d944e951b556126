"""The reader as it would ship: the int8 ONNX file `export.py` writes, on ONNX Runtime, checked
against its sha256. `benchmarks/reader_gate.py score` reads with it, so the gate measures the
file a user would get, not the training run's fp32 model.

It is not in the product: the gate (docs/limits.md) was not passed, and StorInfer ships no
reader until one is.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storinfer.models.weights import WeightsError

MAX_QUESTION_TOKENS = 48


def _softmax(x: Any) -> Any:
    import numpy as np

    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class OnnxReader:
    """An exported reader (``folder``: reader.json, reader.onnx, tokenizer.json) on ONNX Runtime
    (``threads``, else ``$STORINFER_EMBED_THREADS``, else up to 2)."""

    def __init__(self, folder: str | os.PathLike[str], *, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        meta_file = self.folder / "reader.json"
        if not meta_file.is_file():
            msg = f"No reader at {self.folder} (reader.json missing): run tools/reader/export.py --trained DIR --target {self.folder}"
            raise WeightsError(msg)
        self.meta = json.loads(meta_file.read_text())
        model = self.folder / self.meta["file"]
        digest = hashlib.sha256(model.read_bytes()).hexdigest() if model.is_file() else "missing"
        if digest != self.meta["sha256"]:
            msg = (f"The reader's weights at {model} do not match their sha256 ({digest[:12]}... against "
                   f"{self.meta['sha256'][:12]}...): export it again.")
            raise WeightsError(msg)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or int(os.environ.get("STORINFER_EMBED_THREADS", 0)) or min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_QUESTION_TOKENS + int(self.meta["training"]["max_context_tokens"]),
                                         strategy="only_second")

    def read(self, question: str, contexts: Sequence[str]) -> tuple[list[Any], Any, Any]:
        """The encodings of (question, context) pairs and the start / end probabilities over their tokens
        (index 0, ``[CLS]``, is "not here"; question tokens get none)."""
        import numpy as np

        encodings = self.tokenizer.encode_batch([(question, c) for c in contexts])
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(contexts), width), dtype=np.int64)
        types, mask = np.zeros_like(ids), np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            types[row, : len(e.ids)] = e.type_ids
            mask[row, : len(e.ids)] = 1
        start, end = self.session.run(None, {"ids": ids, "mask": mask, "types": types})
        allowed = (types == 1) & (mask == 1)
        allowed[:, 0] = True
        start, end = np.where(allowed, start, -1e9), np.where(allowed, end, -1e9)
        return encodings, _softmax(start), _softmax(end)
