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


def _printed(nb) -> str:
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                   for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_every_notebook_says_what_it_must_show_and_ships_showing_it():
    """Each notebook found in notebooks/ has its expected output here, and is committed with that output
    (the README says the notebooks ship "with their outputs")."""
    assert NOTEBOOKS and {p.stem for p in NOTEBOOKS} == set(EXPECTED), "give each notebook its EXPECTED output"
    for path in NOTEBOOKS:
        shown = _printed(nbformat.read(path, as_version=4))
        assert [e for e in EXPECTED[path.stem] if e not in shown] == [], f"{path.name}: run it and commit its outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    text = _printed(nb)
    for expected in EXPECTED[path.stem]:
        assert expected in text, expected
