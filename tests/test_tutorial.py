"""docs/tutorial.ipynb runs top to bottom in a real Jupyter kernel, on a tiny budget, and is stored without outputs."""

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parent.parent / "docs" / "tutorial.ipynb"


def test_the_tutorial_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_the_tutorial_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("QNAS_TUTORIAL_TINY", "1")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=dict(os.environ))
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "OPENQASM 3.0" in text and "measured {" in text
    # The front's plot and the circuit drawing came out as images.
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2
    assert (tmp_path / "runs" / "tutorial" / "best.json").exists()
