"""One mistake, one error, on every face: a bad option raises ConfigError (a ValueError) with the same
message naming the fix, whichever face is given it; a store that cannot be opened raises StoreError."""

from __future__ import annotations

import math

import pytest
from langchain_core.runnables import RunnableLambda
from llama_index.core.query_engine import CustomQueryEngine

from storinfer import ConfigError, QAStore, StoreError, StoreFront
from storinfer_langchain import StorInferCache, StorInferChain
from storinfer_llamaindex import StorInferQueryEngine


class Answers(CustomQueryEngine):
    """A LlamaIndex query engine that always answers the same: these tests are about the faces' options."""

    def custom_query(self, query_str: str) -> str:
        return "an answer"


FACES = {
    "StoreFront": lambda store, **options: StoreFront(store, **options),
    "StorInferCache": lambda store, **options: StorInferCache(store, **options),
    "StorInferChain": lambda store, **options: StorInferChain(RunnableLambda(lambda q: "an answer"), store, **options),
    "StorInferQueryEngine": lambda store, **options: StorInferQueryEngine(Answers(), store, **options),
}

# A bad option, and what the message must say to do about it.
MISTAKES = [
    ({"store": 12345}, "QAStore(path, embedding=...)"),
    ({"namespace": ""}, "non-empty string"),
    ({"namespace": 7}, "non-empty string"),
    ({"ttl_seconds": -1}, "positive number of seconds, or None"),
    ({"ttl_seconds": math.nan}, "positive number of seconds, or None"),
    ({"max_wrong_rate": 2}, "between 0 and 1 (e.g. 0.01)"),
    ({"max_wrong_rate": math.nan}, "between 0 and 1 (e.g. 0.01)"),
    ({"max_wrong_rate": 0.02, "learner": None}, "drop learner=None"),
    ({"policy": "strict"}, "VerifierPolicy(...)"),
    ({"learner": "on"}, "Learner(max_wrong_rate=...)"),
    ({"store_misses": "yes"}, "True (store the chain's answers to misses) or False"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory, embeddings):
    with QAStore(tmp_path_factory.mktemp("errors") / "store", embedding=embeddings) as s:
        yield s


@pytest.mark.parametrize(("options", "fix"), MISTAKES, ids=[",".join(o) + f"={list(o.values())[-1]!r}" for o, _ in MISTAKES])
def test_every_face_refuses_a_bad_option_with_the_same_config_error(store, options, fix):
    options = dict(options)
    target = options.pop("store", store)
    raised = {}
    for name, build in FACES.items():
        with pytest.raises(ConfigError) as info:
            build(target, **options)
        raised[name] = (type(info.value), str(info.value))
    assert issubclass(raised["StoreFront"][0], ValueError)
    assert len(set(raised.values())) == 1, raised  # the same type and message on every face
    assert fix in raised["StoreFront"][1]


def test_a_store_that_cannot_be_opened_is_a_store_error_on_every_face(tmp_path):
    not_a_folder = tmp_path / "store.txt"
    not_a_folder.write_text("not a store")
    for name, build in FACES.items():
        with pytest.raises(StoreError, match="is a file. Pass a directory") as info:
            build(str(not_a_folder))
        assert not isinstance(info.value, ValueError), name  # not a bad option: the store itself
    assert not_a_folder.read_text() == "not a store"
