"""The probes of benchmarks/decision_data.py: a small FAQ of held-out intents, with out-of-scope traffic (FAQ
probes) or only rephrasings of its questions (rephrasing probes)."""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

from decision_data import (  # noqa: E402
    FAQ_QUERIES,
    REPHRASE_QUERIES,
    faq_banking77,
    faq_clinc150,
    rephrase_banking77,
    rephrase_clinc150,
)


@pytest.mark.parametrize(("make", "stored"), [(faq_banking77, 19), (faq_clinc150, 37)])
def test_faq_probe_stores_half_the_held_out_intents_one_question_each(make, stored):
    stream = make()
    intents = [aid for _q, _a, aid in stream.kb]
    assert len(intents) == len(set(intents)) == stored
    assert len(stream.queries) == FAQ_QUERIES
    covered = {a for _q, a, _aid in stream.kb}
    answerable = [q for q in stream.queries if q.matchable]
    # the other half of the intents reach the chain (answerable once remembered); out-of-scope never is
    assert 0 < sum(q.answers[0] in covered for q in answerable) < len(answerable) < FAQ_QUERIES
    assert all(q.answers[0].startswith("[out of scope #") for q in stream.queries if not q.matchable)


def test_faq_probes_leave_out_what_the_verifier_was_fitted_on():
    with open(REPO / "data" / "banking77" / "categories.json") as fh:
        fitted = set(sorted(json.load(fh))[0::2])
    stream = faq_banking77()
    assert not {aid for _q, _a, aid in stream.kb} & fitted
    assert not {q.answers[0] for q in stream.queries} & {f"[answer for {c}]" for c in fitted}
    domains = json.loads((REPO / "data" / "clinc150" / "domains.json").read_text())
    fitted = {i for d in sorted(domains)[0::2] for i in domains[d]}
    assert not {aid for _q, _a, aid in faq_clinc150().kb} & fitted


@pytest.mark.parametrize(("make", "stored"), [(rephrase_banking77, 38), (rephrase_clinc150, 75)])
def test_rephrasing_probe_stores_every_held_out_intent_and_asks_only_rephrasings(make, stored):
    stream = make()
    intents = [aid for _q, _a, aid in stream.kb]
    assert len(intents) == len(set(intents)) == stored
    assert len(stream.queries) == REPHRASE_QUERIES
    assert all(q.matchable for q in stream.queries)
    assert {q.answers[0] for q in stream.queries} <= {a for _q, a, _aid in stream.kb}
    # a rephrasing, never the stored question itself
    assert not {q.text for q in stream.queries} & {q for q, _a, _aid in stream.kb}
    # the same held-out intents as the FAQ probe, all of them stored
    faq = (faq_banking77 if make is rephrase_banking77 else faq_clinc150)()
    assert {aid for _q, _a, aid in faq.kb} < set(intents)
