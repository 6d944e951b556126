"""Store: the question-answer pairs in Chroma, and what the store keeps beside them.

* :mod:`~storinfer.store.qastore`: :class:`QAStore`, adding, reading and searching pairs;
* :mod:`~storinfer.store.layout`: which Chroma collection holds what (one per partition);
* :mod:`~storinfer.store.encoding`: a pair as written and read back (packed metadata);
* :mod:`~storinfer.store.maintenance`: deleting, expiring, invalidating, counting;
* :mod:`~storinfer.store.sentences`, :mod:`~storinfer.store.ledger`, :mod:`~storinfer.store.labels`,
  :mod:`~storinfer.store.states`: the side tables (source sentences, finished chunks, labels from
  traffic, each partition's learnt state);
* :mod:`~storinfer.store.locks`, :mod:`~storinfer.store.integrity`: one process per local store, and ``check``.
"""

from storinfer.store.labels import Label, LabelTable
from storinfer.store.layout import DEFAULT_COLLECTION, SCHEMA_VERSION
from storinfer.store.qastore import MAX_QUERY_CHARS, QAStore

__all__ = ["DEFAULT_COLLECTION", "MAX_QUERY_CHARS", "SCHEMA_VERSION", "Label", "LabelTable", "QAStore"]
