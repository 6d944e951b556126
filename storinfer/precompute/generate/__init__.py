"""Generate: the questions users are likely to ask about a chunk.

* :mod:`~storinfer.precompute.generate.facts`, :mod:`~storinfer.precompute.generate.fact_questions`,
  :mod:`~storinfer.precompute.generate.wh_questions`, :mod:`~storinfer.precompute.generate.wh_text`:
  the answer-aware generator (every fact of the chunk, a question written for it);
* :mod:`~storinfer.precompute.generate.free`: the paper's free generator (adaptive masking and sampling);
* :mod:`~storinfer.precompute.generate.rephrase`: other ways to ask an accepted question.
"""
