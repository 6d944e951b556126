"""Match: does a stored question ask what the user asks?

* :mod:`~storinfer.match.lookup`: the exact key, else the nearest keys, checked by the verifier;
* :mod:`~storinfer.match.verify`: the hit verifier (hard rules, then a learned score per kind of key);
* :mod:`~storinfer.match.lookalike`: the look-alike rules (numbers, names, negation, question type...);
* :mod:`~storinfer.match.features`: the features of a (question, candidate) pair;
* :mod:`~storinfer.match.calibrate`: an operating point from probes the store makes of itself.
"""
