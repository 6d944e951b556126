"""Match: does a stored question ask what the user asks?

* :mod:`~storinfer.match.lookup`: the exact key, else the nearest keys (the one read of the store);
* :mod:`~storinfer.match.policy`: how candidates are decided (the verifier at a point, or a threshold);
* :mod:`~storinfer.match.verify`: the hit verifier (hard rules, then a learned score per kind of key);
* :mod:`~storinfer.match.point`: the operating point every reader uses;
* :mod:`~storinfer.match.judge`: the answer judge (would the stored answer have done?);
* :mod:`~storinfer.match.llm_check`: an optional model asked about doubtful candidates;
* :mod:`~storinfer.match.lookalike`, :mod:`~storinfer.match.features`: the look-alike rules and the pair features;
* :mod:`~storinfer.match.calibrate`: an operating point from probes the store makes of itself;
* :mod:`~storinfer.match.bounds`: exact binomial confidence bounds (the learner's evidence, reports).
"""
