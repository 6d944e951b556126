"""all-MiniLM-L6-v2 through ONNX Runtime: the same vectors as sentence-transformers, about 4x faster.

``storinfer prepare-models`` (run by ``make setup``) exports the packaged PyTorch weights once,
with mean pooling and L2 normalisation inside the graph, fuses it with onnxruntime's BERT
optimiser, and writes it to
``$STORINFER_HOME/minilm-onnx/model.onnx`` (default ``~/.cache/storinfer``). Nothing is downloaded.
:class:`~storinfer.models.LocalEmbedder` uses the exported file when it is there and
``onnxruntime`` is installed, else the PyTorch path (sentence-transformers).

Measured on 2 cores (``benchmarks/embedder_paths.py`` at a3f929c): one short question embeds in about 3 ms,
against about 12 ms through sentence-transformers, and the nearest stored question is the same
for all 2,848 SQuAD lookups tried.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json)
_FILE = "model.onnx"


def onnx_dir(home: Path) -> Path:
    return home / "minilm-onnx"


def export_minilm(model_dir: str, target: Path, *, force: bool = False) -> Path:
    """Export the MiniLM weights in ``model_dir`` to ``target/model.onnx`` (mean-pooled, normalised)."""
    out = target / _FILE
    if out.is_file() and not force:
        return out
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir).eval()

    class Pooled(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            hidden = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            weight = mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weight).sum(1) / weight.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    target.mkdir(parents=True, exist_ok=True)
    tmp = target / (_FILE + ".tmp")
    sample = torch.ones((1, 4), dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in ("ids", "mask", "types")} | {"embedding": {0: "batch"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Pooled(model).eval(), (sample, sample, torch.zeros_like(sample)), str(tmp),
                          input_names=["ids", "mask", "types"], output_names=["embedding"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    _fuse(tmp)
    os.replace(tmp, out)  # a half-written file is never taken for the model
    (target / "source.json").write_text(json.dumps({"exported_from": model_dir}))
    return out


def _fuse(path: Path) -> None:
    """Fuse the graph's LayerNorm / GELU nodes with onnxruntime's BERT optimiser (about 25% faster
    on 2 cores, same vectors); left as exported if the optimiser is unavailable."""
    try:
        from onnxruntime.transformers import optimizer
    except ImportError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = optimizer.optimize_model(str(path), model_type="bert", num_heads=12, hidden_size=384, opt_level=1)
        model.save_model_to_file(str(path))


class OnnxMiniLM:
    """Runs the exported graph: tokenise with the packaged ``tokenizer.json``, one ORT session
    (``threads``, else ``$STORINFER_EMBED_THREADS``, else up to 2)."""

    def __init__(self, model_file: Path, tokenizer_file: Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or int(os.environ.get("STORINFER_EMBED_THREADS", 0)) or min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting after a run: on 2 cores, spinning threads would take the CPU from the
        # model that runs next (a miss) or beside (speculative).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self._counter = Tokenizer.from_file(str(tokenizer_file))
        self._counter.no_padding()
        self._counter.no_truncation()

    def encode(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        encodings = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        return self.session.run(None, {"ids": ids, "mask": mask, "types": np.zeros_like(ids)})[0].tolist()

    def token_count(self, text: str) -> int:
        return len(self._counter.encode(text).ids)
