"""Helpers shared by integration tests: a real Chroma server and a non-root child process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(argv: list[str], port: int, log: Path, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> Iterator[None]:
    """Run a server process for the block; first wait (60 s at most) until it listens on ``port``.
    Its output goes to ``log``."""
    out = open(log, "w")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(argv)} exited: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{' '.join(argv)} did not listen on port {port} within 60 s")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()


@contextlib.contextmanager
def chroma_server(path: Path) -> Iterator[int]:
    """Run `chroma run --path PATH` on a free port; yield the port."""
    port = free_port()
    with server([str(VENV_BIN / "chroma"), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                port, path.parent / f"chroma-{port}.log", env={**os.environ, "ANONYMIZED_TELEMETRY": "False"}):
        yield port


def run_python(code: str, *, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter of this venv, from the repository root."""
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1", "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=str(Path(__file__).resolve().parents[2]))


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` read-only for this process: chmod for a normal user; for root (whom modes do
    not stop) a read-only bind mount. Skips the test where neither is possible."""
    import pytest

    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        try:
            yield
        finally:
            os.chmod(path, 0o755)
        return
    ok = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True).returncode == 0
    if ok and subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", str(path)], capture_output=True)
        ok = False
    if not ok:
        pytest.skip("running as root without mount rights: no way to make a directory read-only here")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def langchain_rag_chain(texts, embeddings, chat, *, k: int = 1):
    """A LangChain RAG chain as a user writes one: top-k paragraphs, a prompt, the chat model, a parser."""
    from langchain_core.documents import Document
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough
    from langchain_core.vectorstores import InMemoryVectorStore

    docs = [Document(page_content=t, id=f"p{i}") for i, t in enumerate(texts)]
    retriever = InMemoryVectorStore.from_documents(docs, embedding=embeddings).as_retriever(search_kwargs={"k": k})
    prompt = ChatPromptTemplate.from_messages([("system", "Answer the question using the context. Reply with a short phrase only."),
                                               ("human", "Context:\n{context}\n\nQuestion: {question}")])
    context = retriever | (lambda found: "\n\n".join(d.page_content for d in found))
    return {"context": context, "question": RunnablePassthrough()} | prompt | chat | StrOutputParser()


def lookup(store, question, *, namespace: str = "default", partition: str = "default", policy=None, now=None):
    """What ``store`` serves for ``question`` at the policy's point (the shipped verifier by default), no learning."""
    from storinfer import Lookup, VerifierPolicy
    from storinfer.match.features import Query
    from storinfer.match.lookup import find

    policy = (policy or VerifierPolicy()).bind(store)
    found = find(store, question, namespace=namespace, partition=partition, k=policy.k, now=now)
    return found if isinstance(found, Lookup) else policy.decide(Query(found.question), found)


def record_reasons(face) -> list:
    """The :class:`~storinfer.Reason` of every lookup ``face`` (a face or a StoreFront) makes from now on,
    in order: what a test asserts to say why a question was served or not."""
    front = getattr(face, "front", face)
    seen: list = []
    lookup = front.lookup

    def recording(*args, **kwargs):
        found = lookup(*args, **kwargs)
        seen.append(found.reason)
        return found

    front.lookup = recording
    return seen
