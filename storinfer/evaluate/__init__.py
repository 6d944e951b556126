"""Evaluate: SQuAD's files and scoring (exact match, token F1, the strict answer judge), in
:mod:`~storinfer.evaluate.squad`. The benchmarks that replay human questions are in ``benchmarks/``.
"""
