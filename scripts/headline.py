"""What `make repro` says at the end: where the results are, the headline numbers, and how to
share them when the DVC remote is reachable (a clone's default remote may not exist yet)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path


def read(path: str) -> dict:
    return json.loads(Path(path).read_text()) if Path(path).exists() else {}


def remote_reachable() -> str | None:
    """The default DVC remote's URL when it is there: a folder that exists (a relative one is
    relative to .dvc/, as DVC reads it), or any URL that is not a local path."""
    config = lambda key: subprocess.run(["dvc", "config", key], capture_output=True, text=True).stdout.strip()
    name = config("core.remote")
    url = config(f"remote.{name}.url") if name else ""
    if not url:
        return None
    return url if "://" in url or (Path(".dvc") / url).resolve().is_dir() else None


def main() -> None:
    train, ev, gen = read("metrics/train.json"), read("metrics/eval.json"), read("metrics/generate.json")
    print("results: metrics/*.json, reports/, plots/ (make plots), samples/*.png, models/last.ckpt")
    if ev:
        print(f"  test accuracy {100 * ev['test_accuracy']:.2f}% (validation {100 * train.get('val_acc', float('nan')):.2f}%)")
    if gen.get("judge_accuracy") is not None:
        print(f"  samples: the judge recognises {100 * gen['judge_accuracy']:.1f}%, Frechet distance {gen['fid']:.1f} "
              f"(class means {gen['fid_class_means']:.1f}, real images {gen['fid_real_train']:.1f}), "
              f"precision {gen['precision']:.2f}, recall {gen['recall']:.2f}")
    if ev.get("inpaint_mse") is not None:
        print(f"  in-painting MSE {ev['inpaint_mse']:.4f} (10-nearest-neighbour fill {ev['inpaint_mse_knn']:.4f})"
              + (f", the judge reads {100 * gen['inpaint_judge_accuracy']:.1f}% of the filled digits right "
                 f"({100 * gen['inpaint_judge_accuracy_knn']:.1f}% of the k-NN fill)" if "inpaint_judge_accuracy" in gen else ""))
    url = remote_reachable()
    if url:
        print(f"share: dvc push (to {url}) and git push; a clone then runs dvc pull")


if __name__ == "__main__":
    main()
