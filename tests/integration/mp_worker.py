"""One of several processes sharing a Chroma server store (run by test_reliability.py).

    python mp_worker.py PORT WORKER OPS

Mixed operations, in order: add its own pair, look up its own last pair (must hit with the
right answer), add one of 10 pairs every worker adds (same answers: idempotent), look up one
of those. Prints a JSON line with what it did and anything that went wrong.
"""

import json
import sys

from storinfer import QAPair, QAStore, StoreFront


def main() -> None:
    port, worker, ops = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    store = QAStore(host="127.0.0.1", port=port)
    front = StoreFront(store, learner=None, write_behind=False)  # the shipped verifier's point: what this test is about
    errors: list[str] = []
    own = 0
    for i in range(ops):
        kind = i % 4
        if kind == 0:
            store.add([QAPair(f"What is fact {own} recorded by worker {worker}?", f"w{worker}-f{own}")])
            own += 1
        elif kind == 1:
            q = f"what is fact {own - 1} recorded by worker {worker}"
            found = front.lookup(q)
            if not found.hit or found.match.answer != f"w{worker}-f{own - 1}":
                errors.append(f"own lookup {q!r}: {found.reason} {found.match and found.match.answer}")
        elif kind == 2:
            s = (i // 4) % 10
            store.add([QAPair(f"Which shared fact has the number {s}?", f"shared-{s}")])
        else:
            s = (i // 4) % 10
            found = front.lookup(f"Which shared fact has the number {s}?")
            if found.hit and found.match.answer != f"shared-{s}":
                errors.append(f"shared lookup {s}: wrong answer {found.match.answer}")
    print(json.dumps({"worker": worker, "own": own, "errors": errors}))


if __name__ == "__main__":
    main()
