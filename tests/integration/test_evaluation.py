"""The SQuAD benchmark (benchmarks/squad_bench.py, `make bench`) end to end on a small slice, with the
real models; its numbers must add up."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from squad_bench import BenchmarkConfig, run_benchmark  # noqa: E402

from storinfer import GenerationConfig, VerifierPolicy  # noqa: E402
from storinfer.match.calibrate import calibrate  # noqa: E402


@pytest.fixture(scope="module")
def bench(tmp_path_factory, embeddings, squad_path):
    out = tmp_path_factory.mktemp("bench")
    cfg = BenchmarkConfig(paragraphs=2, questions=8, calibration_sample=8,
                          generation=GenerationConfig(max_calls_per_chunk=1, max_per_chunk=3, max_facts_per_chunk=3,
                                                      rephrasings=1))
    return run_benchmark(squad_path, out, config=cfg, embeddings=embeddings, progress=False), out


def test_outputs_are_written(bench):
    results, out = bench
    data = json.loads((out / "results.json").read_text())
    assert len(data["records"]) == results["questions"] == 8
    assert "| plain chain |" in (out / "results.md").read_text()
    assert (out / "threshold_curve.png").stat().st_size > 10_000


def test_numbers_add_up(bench):
    results, out = bench
    records = json.loads((out / "results.json").read_text())["records"]
    hits = [r for r in records if r["hit"]]
    s = results["storinfer"]
    assert s["hits"] == len(hits) == s["hits_precomputed"] + s["hits_runtime"]
    assert s["wrong_hits"] == sum(bool(r.get("wrong_hit")) for r in hits)
    assert results["latency_reduction"] == pytest.approx(
        1 - sum(r["storinfer_ms"] for r in records) / sum(r["plain_ms"] for r in records))
    for system in ("plain", "storinfer"):
        assert 0 <= results[system]["em"] <= results[system]["f1"] + 1e-9 <= 1 + 1e-9
    # A miss serves the chain's own answer (the chain runs again behind StorInfer: the plain pass
    # is a separate run); a hit the stored one.
    for r in records:
        if not r["hit"]:
            assert r["chain_answer"] and r["storinfer_answer"] == r["chain_answer"]
    assert results["storage"]["precomputed_pairs"] == results["precompute"]["pairs_stored"]
    assert results["storage"]["pairs_after_replay"] >= results["storage"]["precomputed_pairs"]
    assert [r["threshold"] for r in results["sweep"]] == sorted(r["threshold"] for r in results["sweep"])
    hits_by_t = [r["guard_hits"] for r in results["sweep"]]
    assert hits_by_t == sorted(hits_by_t, reverse=True)  # a higher threshold never serves more
    assert all(r["guard_hits"] <= r["no_guard_hits"] and r["verifier_hits"] <= r["no_guard_hits"] for r in results["sweep"])


def test_calibration_table_is_monotone(bench, chat, embeddings):
    from storinfer_langchain import QAStore

    _results, out = bench
    with QAStore(out / "store", embedding=embeddings) as store:
        cal = calibrate(store, chat, partition="rag", sample=8)
        shipped = VerifierPolicy().bind(store).active
    assert set(cal.heads) == {"question", "fact"} and cal.probes > 0
    for h in cal.heads.values():
        assert h.floor >= getattr(shipped, h.head).floor and h.cut >= getattr(shipped, h.head).cut  # never looser
        for cut in {r["cut"] for r in h.table}:
            hits = [r["hits"] for r in sorted(h.table, key=lambda r: r["threshold"]) if r["cut"] == cut]
            assert hits == sorted(hits, reverse=True)  # a higher floor never serves more
        assert all(r["wrong"] <= r["hits"] for r in h.table)
