"""The streams of `benchmarks/decision.py`: a knowledge base to start the store from, and queries.

Each stream is what an app would see: its store starts from a knowledge base of (question,
answer) pairs, and user queries arrive in a fixed shuffled order (seed 0). A query's `answers`
are what the app's chain would answer (the gold intent, or SQuAD's gold answers); `matchable`
says whether a stored answer can be right for it at all (out-of-scope queries: never).

- banking77: the train split stored (10,003 queries, 77 intents), the test split replayed (3,080).
- clinc150: train stored (15,000 in 150 intents), test (4,500) + oos_test (1,000 out-of-scope) replayed.
- acid: customer_training stored (11,130 in 175 intents), customer_testing replayed (11,042);
  read from `--acid FOLDER` (no licence: never in the repository).
- nlupp_hotels: folds 0-9 stored, folds 10-19 replayed. The answer is the intent set *and* the slot
  values (a booking for two nights is not one for three); messages without an intent (bare
  slot answers such as "today") are out of scope.
- squad_superbowl, squad_24: the articles' paragraphs precomputed with the answer-aware
  generator (no LLM: `fact_answers="span"`, the stored answer is the fact itself), then the human
  questions replayed; a served answer is right when it names what a gold answer names
  (`storinfer.evaluate.squad.answer_matches`).

FAQ probes (not in decision.py's default streams; nothing was designed or fitted on them): a store
shaped like a small FAQ, out-of-scope-heavy traffic, short streams. Only intents the verifier's
question head was not fitted on (`tools/verifier/question_data.py`: BANKING77's odd intents,
CLINC150's odd domains; ACID is not in its fit data at all). Half of those intents, drawn with seed
0, are in the FAQ, each as one stored question (its first training utterance); the other half
reach the app's chain, which answers them (and the store remembers its answers). CLINC150's
`oos_test` (1,000 queries none of the heads was fitted on) is mixed in as out-of-scope traffic, and
the stream is the first 2,000 queries of the shuffled mix:
- faq_banking77: 19 stored questions; faq_clinc150: 37; faq_acid: 87 (read from `--acid FOLDER`).

Rephrasing probes (the same; made after the FAQ probes' runs): a FAQ of *all* those intents, one
stored question each (its first training utterance), and only their test utterances asked, none
out of scope (a FAQ's crowd rephrasings), the first 1,250 of them shuffled:
- rephrase_banking77: 38 stored questions; rephrase_clinc150: 75; rephrase_acid: 175.
"""

from __future__ import annotations

import csv
import functools
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"


@dataclass
class Query:
    text: str
    answers: tuple[str, ...]  # what the chain answers; the first is what it says
    matchable: bool = True


@dataclass
class Stream:
    name: str
    kb: list[tuple[str, str, str]]  # (question, answer, answer_id)
    queries: list[Query]
    squad: bool = False  # right = answer_matches (SQuAD); else the same answer text
    docs: list = field(default_factory=list)  # SQuAD: the paragraphs to precompute

    def right(self, q: Query, served: str) -> bool:
        if not q.matchable:
            return False
        if self.squad:
            from storinfer.evaluate.squad import answer_matches

            return answer_matches(served, q.answers)
        return served == q.answers[0]


def _shuffled(items: list, seed: int = 0) -> list:
    items = list(items)
    random.Random(seed).shuffle(items)
    return items


def _intent(label: str) -> str:
    return f"[answer for {label}]"


def _banking77_rows(name: str) -> list[tuple[str, str]]:
    """(text, intent) of one BANKING77 split."""
    with open(DATA / "banking77" / name, newline="", encoding="utf-8") as fh:
        return [(r["text"], r["category"]) for r in csv.DictReader(fh)]


def _acid_rows(folder: str | Path, name: str) -> list[tuple[str, str]]:
    """(utterance, intent) of one ACID file, blank utterances left out."""
    with open(Path(folder) / name, newline="", encoding="utf-8") as fh:
        return [(r["UTTERANCES"], r["INTENT_NAME"]) for r in csv.DictReader(fh) if r["UTTERANCES"].strip()]


def banking77() -> Stream:
    kb = [(t, _intent(c), c) for t, c in _banking77_rows("train.csv")]
    return Stream("banking77", kb, _shuffled([Query(t, (_intent(c),)) for t, c in _banking77_rows("test.csv")]))


@functools.cache
def _clinc150_data() -> dict:
    """CLINC150's data_full.json, read once per process (the dev stream and the probes all read it)."""
    return json.loads((DATA / "clinc150" / "data_full.json").read_text())


def clinc150() -> Stream:
    data = _clinc150_data()
    kb = [(t, _intent(c), c) for t, c in data["train"]]
    queries = [Query(t, (_intent(c),)) for t, c in data["test"]]
    queries += [Query(t, (f"[out of scope #{i}]",), matchable=False) for i, (t, _c) in enumerate(data["oos_test"])]
    return Stream("clinc150", kb, _shuffled(queries))


def acid(folder: str | Path) -> Stream:
    kb = [(t, _intent(c), c) for t, c in _acid_rows(folder, "customer_training.csv")]
    return Stream("acid", kb, _shuffled([Query(t, (_intent(c),)) for t, c in _acid_rows(folder, "customer_testing.csv")]))


def _nlupp_answer(item: dict) -> str | None:
    intents = sorted(item.get("intents") or [])
    if not intents:
        return None
    slots = sorted(f"{k}={v.get('text', '').lower()}" for k, v in (item.get("slots") or {}).items())
    return "[" + "+".join(intents) + (" | " + ", ".join(slots) if slots else "") + "]"


def nlupp_hotels() -> Stream:
    folds = [json.loads((DATA / "nlupp-hotels" / f"fold{i}.json").read_text()) for i in range(20)]
    kb = []
    for item in (x for f in folds[:10] for x in f):
        answer = _nlupp_answer(item)
        if answer:
            kb.append((item["text"], answer, answer))
    queries = []
    for i, item in enumerate(x for f in folds[10:] for x in f):
        answer = _nlupp_answer(item)
        queries.append(Query(item["text"], (answer or f"[no intent #{i}]",), matchable=answer is not None))
    return Stream("nlupp_hotels", kb, _shuffled(queries))


def squad(name: str, *, titles: list[str] | None = None) -> Stream:
    from storinfer.protocols import Document

    path = DATA / "squad-dev-v1.1-24articles" / "dev-v1.1-24articles.json"
    articles = json.loads(path.read_text())["data"]
    if titles:
        articles = [a for a in articles if a["title"] in titles]
    docs, queries = [], []
    for a in articles:
        for i, p in enumerate(a["paragraphs"]):
            docs.append(Document(p["context"], id=f"{a['title']}-p{i:03d}"))
            queries += [Query(qa["question"].strip(), tuple(x["text"] for x in qa["answers"])) for qa in p["qas"]]
    return Stream(name, [], _shuffled(queries), squad=True, docs=docs)


FAQ_QUERIES = 2000


def _one_question_each(train: list[tuple[str, str]], intents: set[str]) -> list[tuple[str, str, str]]:
    """A FAQ of ``intents``: each one's first training utterance, its answer and its id."""
    first: dict[str, str] = {}
    for text, label in train:
        if label in intents:
            first.setdefault(label, text)
    return [(first[c], _intent(c), c) for c in sorted(first)]


def _faq(name: str, train: list[tuple[str, str]], test: list[tuple[str, str]], intents: list[str]) -> Stream:
    """A FAQ probe (module docstring): half of ``intents`` stored, one question each; the test utterances
    of all of them, and CLINC150's out-of-scope test queries, replayed."""
    kb = _one_question_each(train, set(_shuffled(sorted(intents))[: len(intents) // 2]))
    wanted = set(intents)
    queries = [Query(t, (_intent(c),)) for t, c in test if c in wanted]
    oos = _clinc150_data()["oos_test"]
    queries += [Query(t, (f"[out of scope #{i}]",), matchable=False) for i, (t, _c) in enumerate(oos)]
    return Stream(name, kb, _shuffled(queries)[:FAQ_QUERIES])


REPHRASE_QUERIES = 1250


def _rephrasings(name: str, train: list[tuple[str, str]], test: list[tuple[str, str]], intents: list[str]) -> Stream:
    """A rephrasing probe (module docstring): every one of ``intents`` stored as one question; only their
    test utterances replayed."""
    wanted = set(intents)
    queries = [Query(t, (_intent(c),)) for t, c in test if c in wanted]
    return Stream(name, _one_question_each(train, wanted), _shuffled(queries)[:REPHRASE_QUERIES])


def _banking77_held_out() -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    train, test = _banking77_rows("train.csv"), _banking77_rows("test.csv")
    return train, test, sorted({c for _t, c in train})[1::2]  # the verifier's question head was fitted on the even ones


def _clinc150_held_out() -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    data = _clinc150_data()
    domains = json.loads((DATA / "clinc150" / "domains.json").read_text())
    held_out = [i for d in sorted(domains)[1::2] for i in domains[d]]  # fitted on the even domains
    return [tuple(x) for x in data["train"]], [tuple(x) for x in data["test"]], held_out


def _acid_all(folder: str | Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    train = _acid_rows(folder, "customer_training.csv")
    return train, _acid_rows(folder, "customer_testing.csv"), sorted({c for _t, c in train})


def faq_banking77() -> Stream:
    return _faq("faq_banking77", *_banking77_held_out())


def faq_clinc150() -> Stream:
    return _faq("faq_clinc150", *_clinc150_held_out())


def faq_acid(folder: str | Path) -> Stream:
    return _faq("faq_acid", *_acid_all(folder))


def rephrase_banking77() -> Stream:
    return _rephrasings("rephrase_banking77", *_banking77_held_out())


def rephrase_clinc150() -> Stream:
    return _rephrasings("rephrase_clinc150", *_clinc150_held_out())


def rephrase_acid(folder: str | Path) -> Stream:
    return _rephrasings("rephrase_acid", *_acid_all(folder))


def streams(names: list[str], *, acid_folder: str | None = None) -> list[Stream]:
    makers = {"banking77": banking77, "clinc150": clinc150, "nlupp_hotels": nlupp_hotels,
              "acid": lambda: acid(acid_folder) if acid_folder else None,
              "squad_superbowl": lambda: squad("squad_superbowl", titles=["Super_Bowl_50"]),
              "squad_24": lambda: squad("squad_24"),
              "faq_banking77": faq_banking77, "faq_clinc150": faq_clinc150,
              "faq_acid": lambda: faq_acid(acid_folder) if acid_folder else None,
              "rephrase_banking77": rephrase_banking77, "rephrase_clinc150": rephrase_clinc150,
              "rephrase_acid": lambda: rephrase_acid(acid_folder) if acid_folder else None}
    out = []
    for n in names:
        s = makers[n]()
        if s is None:
            print(f"skipped {n}: pass --acid FOLDER (the ACID csv files; no licence, so not in the repository)")
            continue
        out.append(s)
    return out
