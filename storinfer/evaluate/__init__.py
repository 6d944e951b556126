"""Evaluate: replaying human questions through StorInfer, and SQuAD's scoring.

* :mod:`~storinfer.evaluate.squad`: SQuAD files, exact match and F1, the strict answer judge;
* :mod:`~storinfer.evaluate.benchmark`: ``storinfer eval``, precompute then replay with and without StorInfer.
"""
