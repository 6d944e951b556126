"""Each face over the one engine: LangChain's precompute Runnable, LlamaIndex with no LangChain at
all, and the package installed without extras."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda

from storinfer import GenerationConfig
from storinfer_langchain import PrecomputeChain, QAStore

REPO = Path(__file__).resolve().parents[2]
ONE_CALL = GenerationConfig(max_calls_per_chunk=1, max_per_chunk=3, max_new_tokens=60, max_facts_per_chunk=3, rephrasings=1)


class Calls(BaseCallbackHandler):
    def __init__(self) -> None:
        self.chains = 0
        self.models = 0

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.chains += 1

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.models += 1


@pytest.fixture()
def lc_store(tmp_path, embeddings):
    with QAStore(tmp_path / "s", embedding=embeddings) as store:
        yield store


def test_precompute_chain_composes_with_a_loader_and_traces_every_call(lc_store, chat, squad):
    docs = [Document(page_content=squad["paragraphs"][0]["context"], id="p000")]
    answer = chat | StrOutputParser()
    loader = RunnableLambda(lambda _: docs)  # a loader's load(), as a step of the chain
    precompute = PrecomputeChain(lc_store, llm=chat, answer_with=answer, partition="rag", generation=ONE_CALL)
    calls = Calls()
    out = (loader | precompute).invoke(None, config={"callbacks": [calls]})
    summary, pairs = out["summary"], out["pairs"]
    assert summary["keys_stored"] == len(pairs) == lc_store.count(partition="rag", namespace="default") > 0
    assert 0 < summary["pairs_stored"] <= len(pairs)
    assert {p["doc_id"] for p in pairs} == {"p000"} and all(p["answer"] for p in pairs)
    # question-writing calls, one answer and one rephrasing call per question, each seen by the tracer
    assert calls.models == summary["generation_calls"] + summary["answer_calls"] + summary["rephrase_calls"]
    assert calls.chains >= 2  # the sequence and the precompute run
    again = precompute.invoke(docs)  # resumes: nothing left to do
    assert again["summary"]["chunks_already_done"] == 1 and again["pairs"] == []


async def test_precompute_chain_ainvoke_and_batch(lc_store, chat):
    precompute = PrecomputeChain(lc_store, llm=chat, generation=ONE_CALL, answer_with=lambda q: "an answer")
    outs = await precompute.abatch([["Levi's Stadium is in Santa Clara, California."],
                                    ["The Denver Broncos won Super Bowl 50 in February 2016."]])
    assert all(o["summary"]["chunks_processed"] == 1 for o in outs)
    assert lc_store.count() == sum(len(o["pairs"]) for o in outs)


LLAMAINDEX_ONLY = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('langchain', 'langchain_core', 'langchain_huggingface', 'langchain_text_splitters'):
            raise ImportError('LangChain is blocked in this test: ' + name)
sys.meta_path.insert(0, _Block())

import tempfile
from typing import Any
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.llms.types import CompletionResponse, LLMMetadata
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from storinfer import GenerationConfig, QAStore
from storinfer.models import default_chat
from storinfer_llamaindex import StorInferEmbedding, StorInferQueryEngine, precompute

class MyLLM(CustomLLM):  # a user's own LlamaIndex LLM over the offline model: not one of ours
    calls: int = 0

    @property
    def metadata(self):
        return LLMMetadata(model_name="my-llm")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        self.calls += 1
        return CompletionResponse(text=default_chat(48).chat_batch([[{"role": "user", "content": prompt}]])[0])

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        yield self.complete(prompt)

text = ("Super Bowl 50 was an American football game to determine the champion of the National Football League "
        "for the 2015 season. The Denver Broncos defeated the Carolina Panthers 24-10 to earn their third title. "
        "The game was played on February 7, 2016, at Levi's Stadium in Santa Clara, California.")
llm = MyLLM()
embed = StorInferEmbedding()
index = VectorStoreIndex.from_documents([Document(text=text, id_="sb50")], embed_model=embed)
engine = index.as_query_engine(llm=llm, similarity_top_k=1)
with tempfile.TemporaryDirectory() as tmp:
    store = QAStore(tmp, embedding=embed.engine_embedder)
    summary = precompute(index, store, llm=llm, answer_with=engine, progress=False,
                         config=GenerationConfig(max_calls_per_chunk=1, max_per_chunk=2, max_new_tokens=60,
                                                 max_facts_per_chunk=1, rephrasings=1))
    assert summary.pairs_stored >= 1 and llm.calls == summary.llm_calls, (summary, llm.calls)
    stored = next(store.iter_pairs())
    hit = StorInferQueryEngine(engine, store, index=index).query(stored.question)
    assert hit.metadata["cache_hit"] and hit.response == stored.answer
    store.close()
leaked = sorted(m for m in sys.modules if m.startswith(('langchain', 'storinfer_langchain')))
assert not leaked, leaked
print("llamaindex ok", summary.pairs_stored)
"""


def test_llamaindex_precompute_with_its_own_llm_and_no_langchain():
    out = subprocess.run([sys.executable, "-c", LLAMAINDEX_ONLY], capture_output=True, text=True, timeout=600,
                         cwd=str(REPO), env={**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "llamaindex ok" in out.stdout


def test_package_installs_without_extras_and_the_engine_imports(tmp_path):
    """A fresh venv, `pip install .` with no extras: the engine imports; the faces name their extra."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
                          str(REPO)], capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    code = textwrap.dedent("""
        import importlib.metadata as md, sys
        import storinfer
        from storinfer import QAStore, Precomputer, StoreFront
        installed = {d.metadata['Name'].lower() for d in md.distributions()}
        assert not installed & {'langchain-core', 'llama-index-core', 'torch', 'sentence-transformers'}, installed
        try:
            import storinfer_langchain
        except ImportError as err:
            print('face:', err)
        try:
            storinfer.default_embedder()
        except ImportError as err:
            print('local:', err)
        from storinfer.precompute.generate.facts import load_nlp
        try:
            load_nlp()
        except ImportError as err:
            print('nlp:', err)
    """)
    out = subprocess.run([str(venv / "bin/python"), "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=str(tmp_path), env={"PATH": "/usr/bin:/bin", "ANONYMIZED_TELEMETRY": "False"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "pip install 'storinfer[langchain]'" in out.stdout
    assert "pip install 'storinfer[local]'" in out.stdout
    assert "pip install 'storinfer[nlp]'" in out.stdout and "answer_aware=False" in out.stdout
