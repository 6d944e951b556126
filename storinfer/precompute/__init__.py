"""Precompute: documents in, deduplicated question-answer pairs in the store (the offline job).

documents (:mod:`~storinfer.precompute.documents`, :mod:`~storinfer.precompute.loading`)
-> generate (:mod:`storinfer.precompute.generate`) -> deduplicate (:mod:`~storinfer.precompute.deduplicate`)
-> answer (:mod:`~storinfer.precompute.answer`) -> keys (:mod:`~storinfer.precompute.keys`)
-> the store. :mod:`~storinfer.precompute.run` (:class:`Precomputer`) runs the steps;
:mod:`~storinfer.precompute.summary` counts what they did.
"""

from storinfer.precompute.answer import answer_text
from storinfer.precompute.run import Precomputer, export_jsonl
from storinfer.precompute.summary import PrecomputeSummary

__all__ = ["PrecomputeSummary", "Precomputer", "answer_text", "export_jsonl"]
