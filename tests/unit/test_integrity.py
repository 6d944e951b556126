"""The index probe of ``storinfer check``: a wider search before a pair is called missing; and
writes that make sure the vector index holds what they wrote."""

import pytest

from storinfer.errors import StoreError
from storinfer.store.integrity import REWRITES, _found_by_own_vector, upsert_indexed


class _Col:
    """A collection whose index finds ``pid`` only when asked for at least ``finds_at`` results."""

    def __init__(self, finds_at: int | None, count: int = 50):
        self.finds_at, self.n, self.asked = finds_at, count, []

    def count(self) -> int:
        return self.n

    def query(self, query_embeddings, n_results, include):
        self.asked.append(n_results)
        ids = ["p"] if self.finds_at is not None and n_results >= self.finds_at else ["other"]
        return {"ids": [ids], "distances": [[0.0 if ids == ["p"] else 0.2]]}


def test_found_at_the_default_width_asks_once():
    col = _Col(finds_at=1)
    assert _found_by_own_vector(col, "p", [0.1]) and col.asked == [10]


def test_missed_at_the_default_width_is_asked_again_wider():
    col = _Col(finds_at=50)
    assert _found_by_own_vector(col, "p", [0.1]) and col.asked == [10, 50]


def test_a_pair_the_index_lacks_is_reported():
    col = _Col(finds_at=None, count=2000)
    assert not _found_by_own_vector(col, "p", [0.1]) and col.asked == [10, 500]


def test_a_small_partition_is_not_asked_the_same_question_twice():
    col = _Col(finds_at=None, count=8)
    assert not _found_by_own_vector(col, "p", [0.1]) and col.asked == [10]


class _Losing:
    """A collection whose vector index drops ``lose`` on its first ``times`` writes of it (records kept)."""

    def __init__(self, lose: str, times: int):
        self.lose, self.times, self.indexed, self.writes = lose, times, set(), []

    def upsert(self, ids, embeddings, documents, metadatas):
        self.writes.append(list(ids))
        for pid in ids:
            if pid == self.lose and self.times > 0:
                self.times -= 1
                continue
            self.indexed.add(pid)

    def query(self, query_embeddings, n_results, include, ids=None):
        if ids is None:  # each vector's nearest: every indexed id (this index is small)
            return {"ids": [sorted(self.indexed)[:n_results] for _ in query_embeddings]}
        return {"ids": [[pid for pid in ids if pid in self.indexed][:n_results]]}

    def get(self, ids, include):
        written = {pid for batch in self.writes for pid in batch}  # the records are kept
        return {"ids": [pid for pid in ids if pid in written]}


def _write(col):
    ids = ["a", "b", "c"]
    return upsert_indexed(col, ids, [[1.0]] * 3, ["A", "B", "C"], [{}] * 3)


def test_a_pair_the_index_dropped_is_written_again():
    col = _Losing(lose="b", times=1)
    assert _write(col) == 1
    assert col.writes == [["a", "b", "c"], ["b"]] and col.indexed == {"a", "b", "c"}


def test_a_write_fails_rather_than_store_a_pair_no_search_finds():
    col = _Losing(lose="b", times=REWRITES + 1)
    with pytest.raises(StoreError, match="storinfer check"):
        _write(col)
    assert col.writes == [["a", "b", "c"]] + [["b"]] * REWRITES


def test_a_write_the_index_holds_is_written_once():
    col = _Losing(lose="none", times=0)
    assert _write(col) == 0 and col.writes == [["a", "b", "c"]]


def test_a_pair_deleted_right_after_its_write_is_not_written_again():
    col = _Losing(lose="b", times=1)
    col.get = lambda ids, include: {"ids": [pid for pid in ids if pid != "b"]}  # "b" deleted by another client
    assert _write(col) == 0 and col.writes == [["a", "b", "c"]]
