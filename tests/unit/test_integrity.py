"""The index probe of ``storinfer check``: a wider search before a pair is called missing."""

from storinfer.store.integrity import _found_by_own_vector


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
