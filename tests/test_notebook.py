"""The analysis notebook runs top to bottom against a finished (small) run."""
import pytest
import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT


@pytest.mark.slow  # a Jupyter kernel / an Optuna study: slow by nature
def test_analysis_notebook_executes_on_a_small_run(finished_run, monkeypatch):
    folder, data, _ = finished_run
    monkeypatch.setenv("ASTDP_RUN", str(folder))
    monkeypatch.setenv("ASTDP_DATA", str(data))
    monkeypatch.setenv("ASTDP_OVERRIDES", "data.verify=false")
    nb = nbformat.read(ROOT / "notebooks" / "analysis.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 4  # curves, receptive fields, generated digits, in-painting
    text = "".join(o.get("text", "") for o in outputs)
    assert "judge accuracy" in text and "in-painting MSE" in text
