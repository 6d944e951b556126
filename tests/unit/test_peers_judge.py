"""The peers benchmark's judge and streams (benchmarks/peers.py): what counts as a right hit."""

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import peers  # noqa: E402


def test_an_out_of_scope_query_is_never_served_right():
    assert not peers.right("clinc150-zipf", "oos", "oos")
    assert peers.right("clinc150-zipf", "balance", "balance")
    assert not peers.right("clinc150-zipf", "balance", "transfer")


def test_squad_hits_are_judged_by_gold_answers_or_the_paragraph():
    assert peers.right("squad", ("Denver Broncos",), ("the Denver Broncos",))
    assert not peers.right("squad", ("Denver Broncos",), ("Carolina Panthers",))
    assert peers.right("squad", ("Levi's Stadium",), ("paragraph", "The game was played at Levi's Stadium."))
    assert not peers.right("squad", ("Levi's Stadium",), ("paragraph", "The Broncos won."))


def test_the_zipf_stream_repeats_popular_intents_and_mixes_in_out_of_scope():
    rng = random.Random(0)
    by = peers.clinc_intents(20, rng)
    queries, kb = peers.clinc_stream(500, by, rng)
    labels = [label for _q, label in queries]
    counts = sorted((labels.count(x) for x in set(labels) - {"oos"}), reverse=True)
    assert counts[0] > 5 * counts[-1]  # a few needs come back often
    assert 20 <= labels.count("oos") <= 80  # about 10%
    assert len(kb) == 20 and {label for _t, label in kb} == set(by)
    first, _kb = peers.repeats_stream(30, by, rng)
    assert first[:30] == first[30:]
