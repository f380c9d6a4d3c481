"""Build the README's results table from the metrics files of DVC experiments.

    astdp-results                    # print the table (newest experiment of each preset)
    astdp-results --readme README.md # and write it between the README's results markers

Each row is the newest DVC experiment (or the workspace) whose ``name`` parameter is
that preset; its numbers come from ``metrics/*.json`` as DVC stored them. Reference
rows from the literature are marked as published, not measured here.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from astdp.io import atomic_path

START, END = "<!-- results:start -->", "<!-- results:end -->"
PRESETS = {  # preset name -> what the row is
    "paper": "aSTDP, `experiment=paper`",
    "paper_backprop": "backprop MLP, `experiment=paper_baseline` (trained as the paper preset, autograd)",
    "default": "aSTDP, default `dvc repro`",
    "unsupervised": "aSTDP unsupervised, `experiment=unsupervised` (linear read-out)",
    "backprop_mlp": "backprop MLP, `experiment=baseline` (same size, autograd)",
}
PUBLISHED = [  # (method, MNIST test accuracy, source)
    ("Equilibrium Propagation, 1-3 hidden layers", "97-98% (test error 2-3%)",
     "Scellier & Bengio 2017, Front. Comput. Neurosci. 11:24, doi:10.3389/fncom.2017.00024"),
    ("Diehl & Cook unsupervised STDP, 6400 excitatory neurons", "95.0%",
     "Diehl & Cook 2015, Front. Comput. Neurosci. 9:99, doi:10.3389/fncom.2015.00099"),
]


def experiments(exp_show: list[dict]) -> dict[str, dict]:
    """Newest run of each preset from ``dvc exp show --json``: preset -> {exp, metrics, params}."""
    runs = []
    for commit in exp_show:
        revs = [commit] + [r for exp in commit.get("experiments") or [] for r in exp["revs"]]
        for rev in revs:
            data = rev.get("data") or {}
            params = (data.get("params") or {}).get("params.yaml", {}).get("data") or {}
            metrics = {Path(f).stem: m.get("data") for f, m in (data.get("metrics") or {}).items()}
            if params.get("name") and metrics.get("eval"):
                runs.append((data.get("timestamp") or "", rev.get("name") or rev["rev"][:7], params, metrics))
    newest: dict[str, dict] = {}
    for stamp, exp, params, metrics in sorted(runs, key=lambda r: r[0]):
        newest[params["name"]] = {"exp": exp, "params": params, "metrics": metrics}
    return newest


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def table(runs: dict[str, dict]) -> str:
    """Markdown: measured rows (known presets first), then the published references."""
    lines = ["| run | MNIST test accuracy | judge accuracy of generated digits (variety) | epochs | DVC experiment |",
             "| --- | --- | --- | --- | --- |"]
    for name in [*PRESETS, *sorted(set(runs) - set(PRESETS))]:
        if name not in runs:
            continue
        run = runs[name]
        ev, gen, tr = (run["metrics"].get(k) or {} for k in ("eval", "generate", "train"))
        model = run["params"]["model"]
        hidden = model["net"]["hidden"]
        unsupervised = "plays" in model and model["plays"]["classify"]["scale"] == 0
        acc = _pct(ev.get("readout_accuracy") if unsupervised else ev.get("test_accuracy"))
        judged = gen.get("judge_accuracy") is not None and not unsupervised  # no label was ever clamped
        judge = f"{_pct(gen['judge_accuracy'])} ({gen.get('variety_ratio')})" if judged else "-"
        shift = run["params"]["data"]["max_shift"]
        label = f"{PRESETS.get(name, name)}, hidden {hidden}" + (f", images shifted up to {shift} px" if shift else "")
        lines.append(f"| {label} | {acc} | {judge} | {tr.get('epochs', '-')} | `{run['exp']}` |")
    for method, acc, source in PUBLISHED:
        lines.append(f"| *published:* {method} | {acc} | - | - | {source} |")
    return "\n".join(lines)


def write_into(readme: Path, text: str) -> None:
    """Replace what lies between the results markers; the rest of the file is kept."""
    old = readme.read_text()
    if START not in old or END not in old:
        raise SystemExit(f"error: {readme} has no {START} ... {END} block; add the two markers where the table goes")
    head, rest = old.split(START, 1)
    new = f"{head}{START}\n{text}\n{END}{rest.split(END, 1)[1]}"
    with atomic_path(readme) as tmp:
        tmp.write_text(new)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, help="write the table into this file's results block")
    args = parser.parse_args(argv)
    # Every commit's experiments: presets run before a later commit still count.
    done = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json", "--all-commits"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: `dvc exp show --json` failed: {done.stderr.strip()[-300:]}")
    text = table(experiments(json.loads(done.stdout)))
    print(text)
    if args.readme:
        write_into(args.readme, text)


if __name__ == "__main__":
    main()
