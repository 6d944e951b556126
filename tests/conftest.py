"""Shared fixtures. Every test runs offline: a connection to anything but loopback fails."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tests that need a real LLM use the small SmolLM2-135M on llama.cpp (the offline default is
# Qwen2.5-1.5B, which the tests of the README's examples and one end-to-end test use by name).
os.environ.setdefault("STORINFER_LLM", "smollm2-135m")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on two cores: one thread each for the models (and the
    # processes they start), or the two workers' models would fight for both cores.
    for _var in ("STORINFER_LLM_THREADS", "STORINFER_EMBED_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parents[1]
SQUAD = REPO / "data" / "squad-dev-v1.1-superbowl" / "dev-v1.1-superbowl.json"

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> object:
    host = address[0] if isinstance(address, tuple) else address
    if self.family == socket.AF_UNIX or host in ("127.0.0.1", "::1", "localhost", "0.0.0.0"):
        return _real_connect(self, address)
    raise OSError(f"network access in a test: {address!r} (tests must run offline)")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture(autouse=True)
def _no_global_cache():
    from langchain_core.globals import set_llm_cache

    yield
    set_llm_cache(None)


@pytest.fixture(scope="session")
def embeddings():
    from storinfer_langchain import default_embeddings

    return default_embeddings()


@pytest.fixture(scope="session")
def chat():
    """The real offline SmolLM2-135M on llama.cpp (loaded once per test session)."""
    from storinfer_langchain import default_chat_model

    return default_chat_model(max_new_tokens=32)


@pytest.fixture()
def store(tmp_path, embeddings):
    from storinfer_langchain import QAStore

    s = QAStore(tmp_path / "store", embedding=embeddings)
    yield s
    s.close()


@pytest.fixture(scope="session")
def squad_path() -> Path:
    if not SQUAD.is_file():
        pytest.fail(f"{SQUAD} is missing: it ships with the repository (see data/README.md)")
    return SQUAD


@pytest.fixture(scope="session")
def squad() -> dict:
    """The SQuAD v1.1 dev 'Super_Bowl_50' article (54 paragraphs, 810 human questions)."""
    if not SQUAD.is_file():
        pytest.fail(f"{SQUAD} is missing: it ships with the repository (see data/README.md)")
    return json.loads(SQUAD.read_text())["data"][0]
