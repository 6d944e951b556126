"""Every notebook runs top to bottom, offline, on its own small settings."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
# What each notebook's output must show: answers served from the store.
EXPECTED = {
    "01_langchain_quickstart": ["ms  store  What does AFC stand for", "hit=True"],
    "02_llamaindex_quickstart": ["hit=True", "'cache_hit': True"],
    "03_benchmark": ["latency_reduction", "storinfer-precompute"],
}


def test_there_are_three_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["01_langchain_quickstart.ipynb", "02_llamaindex_quickstart.ipynb",
                                           "03_benchmark.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                   for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    for expected in EXPECTED[path.stem]:
        assert expected in text, expected
