"""`calibrate` with the real store and MiniLM, and a scripted paraphraser (the logic, not the model)."""

from typing import Any

import pytest

from storinfer import QAPair, VerifierPolicy
from storinfer.errors import ConfigError
from storinfer.match.calibrate import Probe, calibrate, calibrate_head
from storinfer.match.verify import Verifier
from storinfer.records import Match

PARAPHRASES = {
    "Who won Super Bowl 50?": "1. Which team won Super Bowl 50?\n2. Who won Super Bowl 49?",  # 49: not a paraphrase
    "Where was Super Bowl 50 played?": "1. In which stadium was Super Bowl 50 played?",
    "Who headlined the Super Bowl 50 halftime show?": "1. Who was the headliner of the Super Bowl 50 halftime show?",
    "What does AFC stand for?": "1. What is AFC short for?",
    "Which network broadcast Super Bowl 50 in the United States?": "1. What network aired Super Bowl 50 in the United States?",
    "How much did a 30-second commercial cost during Super Bowl 50?": "1. What was the price of a 30-second ad in Super Bowl 50?",
    "Who was the MVP of Super Bowl 50?": "1. Who was named the MVP of Super Bowl 50?",
    "When was Levi's Stadium opened?": "1. In what year did Levi's Stadium open?",
    "Who coached the Denver Broncos in Super Bowl 50?": "Sure! The coach was Gary Kubiak.",  # no question: no probe
}


class Paraphraser:
    """A chat model (the engine's protocol) replying with the scripted paraphrases of the question
    in the last message."""

    def chat_batch(self, conversations: Any, **settings: Any) -> list[str]:
        return [PARAPHRASES[c[-1]["content"].splitlines()[-1]] for c in conversations]


def _fill(store) -> None:
    store.add([QAPair(q, f"answer {i}", partition="p", origin="precomputed") for i, q in enumerate(PARAPHRASES)])
    # not paraphrased (not precomputed), but searched: a look-alike the rules stop, and a near
    # neighbour asking something else
    store.add([QAPair("Who won Super Bowl 51?", "runtime answer", partition="p", origin="runtime"),
               QAPair("Which team played in Super Bowl 50?", "runtime answer", partition="p", origin="runtime")])


def test_paraphrase_probes_are_real_paraphrases_looked_up_present_and_hidden(store):
    _fill(store)
    cal = calibrate(store, Paraphraser(), partition="p", min_probes=1)
    assert cal.probes == 16  # 8 paraphrases (not the number-changing one, not the answer), each present and hidden
    q = cal.heads["question"]
    assert q.probes == 16 and not q.fallback and q.hits > 0
    shipped = Verifier.default().question
    assert q.floor >= shipped.floor and q.cut >= shipped.cut  # calibration only tightens
    assert 0.0 <= q.wrong_rate <= q.upper_bound <= 1.0
    for cut in {r["cut"] for r in q.table}:  # per cut, a higher floor never serves more
        hits = [r["hits"] for r in sorted(q.table, key=lambda r: r["threshold"]) if r["cut"] == cut]
        assert hits == sorted(hits, reverse=True)
    assert cal.heads["fact"].fallback  # no answer-aware keys in this store


def test_too_few_probes_keep_the_operating_point(store, caplog):
    _fill(store)
    cal = calibrate(store, Paraphraser(), partition="p", min_probes=200, record=True)
    assert cal.fallback and "fewer than 200" in caplog.text
    assert (cal.threshold, cal.cut) == (Verifier.default().question.floor, Verifier.default().question.cut)
    assert store.setting("operating_point") is None  # nothing recorded


def test_only_precomputed_pairs_of_the_partition_are_paraphrased(store):
    _fill(store)
    store.add([QAPair("What does NFC stand for?", "x", partition="other", origin="precomputed")])
    cal = calibrate(store, Paraphraser(), partition="p", min_probes=1)  # a KeyError if others were asked
    assert cal.probes == 16


def test_key_probes_need_no_model_and_the_point_is_recorded(store):
    # two answers, each under several keys (as precompute stores them): each key is a probe
    keys = {"a1": ["What is the weather forecast for today?", "What is today's weather forecast?",
                   "What will the weather be like today?"],
            "a2": ["How do I top up my card?", "How can I add money to my card?", "How do I put money on my card?"]}
    store.add([QAPair(q, f"answer {aid}", partition="p", extra={"answer_id": aid, "key_kind": "question" if i == 0 else "variant"})
               for aid, qs in keys.items() for i, q in enumerate(qs)])
    cal = calibrate(store, None, partition="p", min_probes=1, record=True)
    assert cal.probes == 4  # per answer: one key with itself hidden, and with its whole answer hidden
    q = cal.heads["question"]
    assert not q.fallback and q.hits >= 1 and q.wrong == 0
    assert store.setting("operating_point")["question"]["probes"] == q.probes
    verifier = VerifierPolicy().bind(store).active
    assert verifier.question.floor == q.floor and verifier.question.cut == q.cut


def test_wrong_hits_at_the_shipped_point_tighten_it():
    shipped = Verifier.default()

    def m(i, question, answer, sim):
        return Match(str(i), question, "", sim, {"answer_id": answer})

    # right: a clear paraphrase of its own answer; wrong: a weaker one of another answer, which the
    # shipped cut still serves (its score is lower)
    right = Probe("what is the weather like today", "A", [m(1, "what is the weather forecast for today", "A", 0.91),
                                                          m(3, "what time is it", "C", 0.60)])
    wrong = Probe("i want to cancel my transfer", "A", [m(2, "how do i cancel a transfer i made", "B", 0.90),
                                                       m(4, "what time is it", "C", 0.70)])
    scores = [shipped.choose(p.query, p.candidates)[1][0].score for p in (right, wrong)]
    assert scores[0] > scores[1] >= shipped.question.cut  # both served at the shipped point
    h = calibrate_head([right] * 20 + [wrong], shipped, "question", target=0.01, floors=[0.8, 0.85, 0.9],
                       cuts=[round(shipped.question.cut + 0.005 * i, 3) for i in range(8)], min_served=5)
    assert h.tightened and h.cut > scores[1] and h.wrong == 0 and h.hits == 20
    easy = calibrate_head([right] * 20, shipped, "question", target=0.01, floors=[0.8, 0.9], cuts=[0.5, 0.99], min_served=5)
    assert not easy.tightened and (easy.floor, easy.cut) == (shipped.question.floor, shipped.question.cut)


def test_a_framework_model_gets_a_clear_error(store):
    _fill(store)
    with pytest.raises(ConfigError, match="as_chat_model"):
        calibrate(store, object(), partition="p")
