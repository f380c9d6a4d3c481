"""`dvc plots show` draws the pipeline's plots offline: the page DVC fills inlines the Vega
libraries (.dvc/plots-page.html) and the confusion plot leaves the diagonal out."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, needs_chromium


def test_the_committed_plot_templates_are_what_the_script_writes(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import plot_templates
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    plot_templates.main(tmp_path)
    for name in ("plots/confusion_errors.json", "plots-page.html"):
        assert (tmp_path / name).read_bytes() == (ROOT / ".dvc" / name).read_bytes(), f"rerun `make plots` ({name})"
    page = (ROOT / ".dvc/plots-page.html").read_text()
    assert "<script src=" not in page and "vegaEmbed" in page  # nothing to fetch
    assert {"filter": "datum.actual != datum.predicted"} in json.loads((tmp_path / "plots/confusion_errors.json")
                                                                      .read_text())["spec"]["transform"]


def test_every_plot_has_axis_titles():
    for plot in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]:
        if isinstance(plot, dict):
            ((title, spec),) = plot.items()
            assert spec.get("x_label") and spec.get("y_label"), title


@pytest.mark.slow
@needs_chromium
def test_dvc_plots_show_draws_every_plot_offline_in_a_browser(finished_run, tmp_path, browser):
    folder, _, _ = finished_run
    project = tmp_path / "project"
    project.mkdir()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=project, check=True, env=env)
    shutil.copytree(ROOT / ".dvc/plots", project / ".dvc/plots")
    shutil.copy(ROOT / ".dvc/plots-page.html", project / ".dvc/plots-page.html")
    (project / ".dvc/config").write_text("[core]\n    no_scm = true\n[plots]\n    html_template = plots-page.html\n")
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    (project / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}))
    for sub in ("plots", "samples"):
        shutil.copytree(folder / sub, project / sub)
    done = subprocess.run(["dvc", "plots", "show", "-o", "out"], cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [r["epoch"] for r in json.loads((project / "plots/train_curve.json").read_text())][0] == 1

    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions",
                            {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
    try:
        browser.get((project / "out/index.html").as_uri())
        from selenium.webdriver.support.ui import WebDriverWait

        charts = sum(isinstance(p, dict) for p in plots)
        drawn = "return document.querySelectorAll('.vega-embed canvas, .vega-embed svg.marks').length"
        WebDriverWait(browser, 30).until(lambda b: b.execute_script(drawn) >= charts)
        widths = browser.execute_script("return Array.from(document.querySelectorAll('img'), i => i.naturalWidth)")
        assert len(widths) == len(plots) - charts and all(w > 0 for w in widths)
    finally:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions",
                                {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
