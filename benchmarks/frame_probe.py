"""Prompts of one template: what the shipped point serves when an LLM cache is handed whole prompts.

Each SQuAD question of the Super Bowl article (`data/squad-dev-v1.1-superbowl`; `--squad others`:
the 23 other dev articles of `data/squad-dev-v1.1-24articles`) is put, with its
own paragraph, into two RAG prompt templates (the question before the context, and after it).
Within each paragraph, every ordered pair of its questions is one lookup: the first asked, the
second stored as an answer from traffic (one candidate, the way `StoreFront` stores a miss). The
default `VerifierPolicy` decides on

* `bare`: the two questions alone (what the query engine and the chain face match on);
* `whole prompt`: the two prompts compared whole (StorInfer before `storinfer.match.frame`);
* `inside the frame`: the product's lookup (`storinfer.match.lookup.inside_frame`), which compares
  what lies inside the frame the two prompts share.

A pair whose questions have no gold answer in common served is wrong; pairs sharing an answer are
listed beside it (served is right, if they ask the same thing; many of them do not). Prompts
longer than the store matches (1,000 characters) are left out, as the store refuses them. Also
what judging inside the frame adds to a lookup (its two embedder calls), each prompt asked with the
8 nearest other prompts of its paragraph as the lookup's candidates.

Then, on the intent streams' own texts (BANKING77, CLINC150), how many queries share a frame with
a stored question at all (where none does, the frame changes nothing), and whether that key is
served to them, compared whole and inside the frame.

    python benchmarks/frame_probe.py [--squad others --paragraphs 2 --no-streams]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from decision_data import banking77, clinc150  # noqa: E402

from storinfer import VerifierPolicy  # noqa: E402
from storinfer.match.features import Query  # noqa: E402
from storinfer.match.frame import FRAME_WORDS, shared_frame  # noqa: E402
from storinfer.match.lookup import DEFAULT_K, Candidates, inside_frame  # noqa: E402
from storinfer.models import default_embedder  # noqa: E402
from storinfer.models.identity import cosine  # noqa: E402
from storinfer.records import Match  # noqa: E402
from storinfer.store.qastore import MAX_QUERY_CHARS  # noqa: E402
from storinfer.text import clean_text  # noqa: E402

SQUAD = {"superbowl": ROOT / "data" / "squad-dev-v1.1-superbowl" / "dev-v1.1-superbowl.json",
         "others": ROOT / "data" / "squad-dev-v1.1-24articles" / "dev-v1.1-24articles.json"}
"""``others``: the 23 dev articles besides the Super Bowl's, on which the frame was not shaped."""
TEMPLATES = {
    "question, then context": ("Use the context below to answer the question. If the context does not say, "
                               "say that you do not know. Answer in one sentence.\nQuestion: {q}\nContext: {c}\nAnswer:"),
    "context, then question": ("You answer questions about a document. Here is the part of it that matters:\n{c}\n"
                               "Answer this question from it, briefly: {q}"),
}
SYSTEMS = ("bare", "whole prompt", "inside the frame")


def decide(policy: VerifierPolicy, asked: str, asked_vector: list[float], key: str, key_vector: list[float],
           embedder, framed: bool) -> bool:
    """Whether the policy serves the stored ``key`` (an answer from traffic) to ``asked``."""
    match = Match("key", key, "[stored answer]", cosine(asked_vector, key_vector), {"origin": "runtime"})
    found = Candidates(asked, asked_vector, [match])
    if framed:
        found = inside_frame(embedder, found)
    return policy.decide(Query(found.question), found).hit


def frame_ms(embedder, prompts: list[str], vectors: list[list[float]]) -> list[float]:
    """What ``inside_frame`` takes (its two embedder calls) for each prompt asked with the other prompts
    of its paragraph as the lookup's candidates, the 8 nearest (``DEFAULT_K``), in ms."""
    out = []
    for i, (asked, vector) in enumerate(zip(prompts, vectors)):
        keys = sorted((Match(str(j), p, "", cosine(vector, v), {"origin": "runtime"})
                       for j, (p, v) in enumerate(zip(prompts, vectors)) if j != i), key=lambda m: -m.similarity)
        found = Candidates(asked, vector, keys[:DEFAULT_K])
        t0 = time.perf_counter()
        judged = inside_frame(embedder, found)
        if judged is not found:
            out.append((time.perf_counter() - t0) * 1000)
    return out


def squad_pairs(embedder, policy: VerifierPolicy, paragraphs: int | None = None, squad: str = "superbowl") -> tuple:
    articles = [a for a in json.loads(SQUAD[squad].read_text())["data"] if squad == "superbowl" or a["title"] != "Super_Bowl_50"]
    counts = {t: {s: {"wrong": 0, "different": 0, "served_same": 0, "same": 0} for s in SYSTEMS} for t in TEMPLATES}
    timings: dict[str, list[float]] = {t: [] for t in TEMPLATES}
    for article in articles:
        for para in article["paragraphs"][:paragraphs]:
            qas = [(clean_text(qa["question"]), {a["text"].lower().strip(" .") for a in qa["answers"]}) for qa in para["qas"]]
            for name, template in TEMPLATES.items():
                prompts = [clean_text(template.format(q=q, c=para["context"])) for q, _ in qas]
                keep = [i for i, p in enumerate(prompts) if len(p) <= MAX_QUERY_CHARS]
                if len(keep) < 2:
                    continue
                bare = dict(zip(keep, embedder.embed_documents([qas[i][0] for i in keep])))
                whole = dict(zip(keep, embedder.embed_documents([prompts[i] for i in keep])))
                timings[name] += frame_ms(embedder, [prompts[i] for i in keep], [whole[i] for i in keep])
                for i, j in itertools.permutations(keep, 2):
                    same = bool(qas[i][1] & qas[j][1])
                    served = {"bare": decide(policy, qas[i][0], bare[i], qas[j][0], bare[j], embedder, False),
                              "whole prompt": decide(policy, prompts[i], whole[i], prompts[j], whole[j], embedder, False),
                              "inside the frame": decide(policy, prompts[i], whole[i], prompts[j], whole[j], embedder, True)}
                    for system, hit in served.items():
                        c = counts[name][system]
                        c["same" if same else "different"] += 1
                        c["served_same" if same else "wrong"] += int(hit)
    return counts, timings


def framed_on_streams(embedder, policy: VerifierPolicy) -> dict:
    """Queries of each intent stream that share a frame with a stored question, and whether the policy
    serves that key to them, compared whole and inside the frame (right: the key's answer is theirs)."""
    out = {}
    for stream in (banking77(), clinc150()):
        keys = [(clean_text(q), a) for q, a, _id in stream.kb if len(q.split()) >= FRAME_WORDS]
        r = {"queries": len(stream.queries), "framed": 0, "keys_of_20_words": len(keys),
             "whole": [0, 0], "inside": [0, 0]}  # [served right, served wrong]
        for query in stream.queries:
            text = clean_text(query.text)
            if len(text.split(" ")) < FRAME_WORDS:
                continue
            key = next(((k, a) for k, a in keys if shared_frame(text, k)), None)
            if key is None:
                continue
            r["framed"] += 1
            right = key[1] == query.answers[0]
            asked_vector, key_vector = embedder.embed_documents([text, key[0]])
            for system, framed in (("whole", False), ("inside", True)):
                if decide(policy, text, asked_vector, key[0], key_vector, embedder, framed):
                    r[system][0 if right else 1] += 1
        out[stream.name] = r
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-streams", action="store_true", help="skip the intent streams' count")
    ap.add_argument("--paragraphs", type=int, default=None, help="only the first N paragraphs of each article")
    ap.add_argument("--squad", choices=sorted(SQUAD), default="superbowl",
                    help="the Super Bowl article (the frame's rules were shaped on it), or the 23 other dev articles")
    ap.add_argument("--no-squad", action="store_true", help="skip the templated SQuAD pairs")
    args = ap.parse_args()
    embedder, policy = default_embedder(), VerifierPolicy()
    counts, timings = ({}, {}) if args.no_squad else squad_pairs(embedder, policy, args.paragraphs, args.squad)
    for template, systems in counts.items():
        for system, c in systems.items():
            print(f"{template:24} {system:17} different answers: served {c['wrong']:4d} of {c['different']} "
                  f"({c['wrong'] / max(1, c['different']):6.2%}) | sharing an answer: served {c['served_same']:3d} of {c['same']}")
    for template, ms in timings.items():
        ms = sorted(ms)
        print(f"{template:24} inside the frame adds to a lookup of up to {DEFAULT_K} keys: p50 "
              f"{statistics.median(ms):6.2f} ms, p99 {ms[int(0.99 * (len(ms) - 1))]:6.2f} ms ({len(ms)} lookups)")
    if not args.no_streams:
        for name, r in framed_on_streams(embedder, policy).items():
            print(f"{name:12} {r['queries']} queries, {r['framed']} share a frame with a stored question "
                  f"({r['keys_of_20_words']} stored questions of {FRAME_WORDS}+ words); that key served compared whole: "
                  f"{r['whole'][0]} right, {r['whole'][1]} wrong; inside the frame: {r['inside'][0]} right, {r['inside'][1]} wrong")


if __name__ == "__main__":
    main()
