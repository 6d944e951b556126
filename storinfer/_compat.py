"""The module paths of StorInfer 0.3, kept importable for one release (0.4 only).

0.4 put the engine's 41 modules into folders named for the steps of the flow. ``import
storinfer.lookup`` (or ``from storinfer.verify import Verifier``...) still works: the old name
is the new module itself, with a :class:`DeprecationWarning` naming the new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED = {
    "answer": "precompute.answer", "deduplicate": "precompute.deduplicate", "documents": "precompute.documents",
    "loading": "precompute.loading", "keys": "precompute.keys", "run_summary": "precompute.summary",
    "generate": "precompute.generate.free", "generate_facts": "precompute.generate.fact_questions",
    "facts": "precompute.generate.facts", "wh_questions": "precompute.generate.wh_questions",
    "wh_text": "precompute.generate.wh_text", "rephrase": "precompute.generate.rephrase",
    "sentences": "store.sentences", "ledger": "store.ledger", "locks": "store.locks", "integrity": "store.integrity",
    "lookup": "match.lookup", "lookalike": "match.lookalike", "pair_features": "match.features", "verify": "match.verify",
    "calibrate": "match.calibrate", "writeback": "serve.writeback", "speculate": "serve.speculate",
    "stats": "serve.stats", "embedder": "models.identity", "local": "models", "onnx_minilm": "models.onnx_minilm",
    "evaluation": "evaluate.benchmark", "squad": "evaluate.squad",
}
"""Old module (``storinfer.<old>``) -> new module (``storinfer.<new>``)."""


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(f"{spec.name} moved to {self.target} in StorInfer 0.4; the old path goes in the next release.",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:  # the module is already loaded
        pass


class _OldPaths(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        head, _, old = fullname.partition(".")
        if head != "storinfer" or old not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(f"storinfer.{MOVED[old]}"))


def install() -> None:
    if not any(isinstance(f, _OldPaths) for f in sys.meta_path):
        sys.meta_path.append(_OldPaths())
