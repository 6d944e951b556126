"""`calibrate` with the real store and MiniLM, and a scripted paraphraser (the logic, not the model)."""

from typing import Any

import pytest

from storinfer import QAPair
from storinfer.calibrate import calibrate
from storinfer.records import DEFAULT_THRESHOLD

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
    # not paraphrased (not precomputed), but searched: a look-alike the guard stops, and a near
    # neighbour asking something else (cosine 0.93 to a paraphrase): a wrong hit at low thresholds
    store.add([QAPair("Who won Super Bowl 51?", "runtime answer", partition="p", origin="runtime"),
               QAPair("Which team played in Super Bowl 50?", "runtime answer", partition="p", origin="runtime")])


def test_probes_are_real_paraphrases_and_the_threshold_keeps_every_higher_one_safe(store):
    _fill(store)
    cal = calibrate(store, Paraphraser(), partition="p", min_probes=1, guard=False)  # the guard would stop it
    assert cal.probes == 8  # the number-changing paraphrase and the answer are not probes
    assert 0.8 < cal.threshold < 0.99  # the played/won neighbour rules out the low ones
    assert not cal.fallback
    assert cal.threshold in [r["threshold"] for r in cal.table]
    by_t = {r["threshold"]: r for r in cal.table}
    assert by_t[cal.threshold]["hits"] > 0
    assert all(r["wrong_rate"] <= cal.target_wrong_rate for t, r in by_t.items() if t >= cal.threshold)
    lower = [t for t in by_t if t < cal.threshold]
    if lower:
        assert by_t[max(lower)]["wrong_rate"] > cal.target_wrong_rate
    hits = [r["hits"] for r in cal.table]
    assert hits == sorted(hits, reverse=True)


def test_too_few_probes_fall_back_to_the_measured_default(store, caplog):
    _fill(store)
    cal = calibrate(store, Paraphraser(), partition="p", min_probes=20)
    assert cal.probes == 8 and cal.fallback
    assert cal.threshold == DEFAULT_THRESHOLD
    assert "fewer than 20" in caplog.text


def test_only_precomputed_pairs_of_the_partition_are_paraphrased(store):
    _fill(store)
    store.add([QAPair("What does NFC stand for?", "x", partition="other", origin="precomputed")])
    cal = calibrate(store, Paraphraser(), partition="p", min_probes=1)  # a KeyError if others were asked
    assert cal.probes == 8


def test_a_framework_model_gets_a_clear_error(store):
    _fill(store)
    with pytest.raises(TypeError, match="as_chat_model"):
        calibrate(store, object(), partition="p")
