"""Export a trained reader (`tools/reader/train.py`) to the ONNX file StorInfer would ship.

The trained weights (fp16 parts) are joined with the base's word embeddings (MiniLM's, rounded to
int8 per row, as training saw them), exported to ONNX with the start and end logits as outputs,
fused with onnxruntime's BERT optimiser and quantised to int8 weights (dynamic quantisation).
Written to ``--target`` (default ``tools/reader/out/onnx``): ``reader.onnx``, the tokenizer, and
``reader.json`` (the file's sha256, the training record, the quantisation). No reader ships in the
package until one passes the gate (`benchmarks/reader_gate.py`, docs/limits.md).

    python tools/reader/export.py --trained tools/reader/out/reader-sentence [--target DIR] [--fp32]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train import WORD_EMBEDDINGS, word_embeddings  # noqa: E402

TARGET = ROOT / "tools" / "reader" / "out" / "onnx"


def load_trained(trained: Path, base: Path):
    """The trained reader as a torch module: (input_ids, attention_mask, token_type_ids) -> start, end logits."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(base))
    encoder = AutoModel.from_config(config, add_pooling_layer=False)
    state: dict = {}
    for part in sorted(trained.glob("weights-*.safetensors")):
        state.update({k: v.float() for k, v in load_file(str(part)).items()})
    head = torch.nn.Linear(config.hidden_size, 2)
    head.load_state_dict({"weight": state.pop("head.weight"), "bias": state.pop("head.bias")})
    state[WORD_EMBEDDINGS] = torch.from_numpy(word_embeddings(base))
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if [m for m in missing if "position_ids" not in m] or unexpected:
        raise RuntimeError(f"trained weights do not fit: missing {missing}, unexpected {unexpected}")

    class Reader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.head = encoder, head

        def forward(self, ids, mask, types):
            logits = self.head(self.encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state)
            return logits[..., 0], logits[..., 1]

    return Reader().eval(), config


def export(trained: Path, base: Path, target: Path, *, quantize: bool = True) -> Path:
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    model, config = load_trained(trained, base)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw, fused = Path(tmp) / "raw.onnx", Path(tmp) / "fused.onnx"
        sample = torch.ones((2, 8), dtype=torch.long)
        axes = {name: {0: "batch", 1: "tokens"} for name in ("ids", "mask", "types", "start", "end")}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (sample, sample, torch.zeros_like(sample)), str(raw), input_names=["ids", "mask", "types"],
                              output_names=["start", "end"], dynamic_axes=axes, opset_version=17, dynamo=False)
            opt = optimizer.optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                                           hidden_size=config.hidden_size, opt_level=1)
            opt.save_model_to_file(str(fused))
        out = target / "reader.onnx"
        if quantize:
            quantize_dynamic(str(fused), str(out), weight_type=QuantType.QInt8, per_channel=True,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        else:
            shutil.copy(fused, out)
    shutil.copy(base / "tokenizer.json", target / "tokenizer.json")
    training = json.loads((trained / "training.json").read_text())
    training.pop("log", None)
    meta = {"file": "reader.onnx", "sha256": hashlib.sha256(out.read_bytes()).hexdigest(), "bytes": out.stat().st_size,
            "quantization": "int8 weights, per channel (onnxruntime dynamic)" if quantize else "none (fp32)",
            "training": training}
    old = target / "reader.json"
    if old.exists():  # keep what the gate chose (the serving threshold) across re-exports
        meta = {**{k: v for k, v in json.loads(old.read_text()).items() if k not in meta}, **meta}
    (target / "reader.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"exported {trained} -> {out} ({out.stat().st_size / 1e6:.1f} MB, sha256 {meta['sha256'][:12]}...)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trained", required=True, help="the folder train.py wrote (weights-*.safetensors, training.json)")
    ap.add_argument("--base", default=str(ROOT / "tools" / "reader" / "out" / "base"))
    ap.add_argument("--target", default=str(TARGET))
    ap.add_argument("--fp32", action="store_true", help="no int8 quantisation")
    args = ap.parse_args()
    export(Path(args.trained), Path(args.base), Path(args.target), quantize=not args.fp32)


if __name__ == "__main__":
    main()
