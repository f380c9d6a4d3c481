"""Side-by-side speed of aSTDP and backprop, bare core against Lightning, memory, scaling.

Every ratio is measured in this one run, on the same data, device and thread count, with
the measurements interleaved and the median of the repeats taken. The last line printed is
one JSON object.

    python benchmarks/bench.py --quick     # a few minutes on 2 CPU cores
    python benchmarks/bench.py --quick --out results/bench.json  # and keep it (the depth table's epoch times)
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf

from astdp.config import validate
from astdp.io import write_json
from astdp.nets.rule import learning_step
from astdp.nets.mlp import mlp as lit_mlp
from astdp.stages.train import flushed_denormals


def composed(*overrides):
    """conf/ composed as the stages compose it (no overrides: what `dvc repro` trains)."""
    with initialize_config_module("astdp.conf", version_base=None):
        cfg = compose("config", overrides=["logger=none", *overrides])
    validate(cfg)
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


CONF = composed()
PAPER = composed("model=astdp")  # the default's network with the paper's two plays only (no redraw, no completion)
# the depth table's recipe at every depth: the invariant preset as it ran then, without its memory (0.36.0)
SHAPES = composed("experiment=invariant", "model=joined_redrawing", "generate.from_memory=false")
BASELINE, INVARIANT_TWIN = composed("experiment=baseline"), composed("experiment=invariant_baseline")  # their backprop twins


def build_module(hidden, conf=CONF):
    """The Lightning module of a config with other hidden sizes, as the train stage builds it."""
    model = OmegaConf.merge(conf.model, {"net": {"hidden": hidden}})
    return instantiate(model, optim=conf.optim, lr_schedule=conf.lr_schedule, _recursive_=False, _convert_="all")


def load_data(root: str, device):
    try:
        data = instantiate(CONF.data, root=root)
        (x, y), (xt, yt) = data.train_val().values()  # the validation images time evaluation: test stays unread
        source = f"{data.name} from {root}"
    except Exception:  # timing does not depend on pixel values: stand in random images
        g = torch.Generator().manual_seed(0)
        x, y = torch.rand(60000, 784, generator=g), torch.randint(0, 10, (60000,), generator=g)
        xt, yt = x[:10000], y[:10000]
        source = "random MNIST-shaped data (no MNIST at data root)"
    return x.to(device), y.to(device), xt.to(device), yt.to(device), source


def backprop_loop(x, y, hidden, batch, n_batches, twin=BASELINE):
    # the twin's read-out (a joined-label twin: every hidden layer votes) and its optimizer
    mlp = lit_mlp(hidden, [28, 28], 10, twin.model.net.every_layer_votes).to(x.device)
    opt = instantiate(twin.optim)(mlp.parameters())

    def run():
        for i in range(n_batches):
            xb, yb = x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(mlp(xb), yb).backward()
            opt.step()
    return run


def astdp_loop(x, y, hidden, batch, n_batches, conf=CONF):
    module = build_module(hidden, conf).to(x.device)  # its net, plays and training settle settings
    net = module.net
    opt = instantiate(conf.optim)(module.param_groups())  # as the train stage: hidden_lr_scale too
    onehot = F.one_hot(y, 10).to(x.dtype)
    params = dict(net.named_parameters())

    def run():
        for i in range(n_batches):
            sl = slice(i * batch, (i + 1) * batch)
            changes, _ = net.weight_changes(x[sl], onehot[sl], module.plays, **module.train_kw)
            learning_step(opt, params.items(), changes)
    return run, net


def lightning_loop(x, y, hidden, batch, n_batches):
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    from astdp.data.datamodule import TensorBatches

    loader = DataLoader(TensorBatches(x[: n_batches * batch], y[: n_batches * batch], batch), batch_size=None)

    class EpochTimer(pl.Callback):
        def on_train_epoch_start(self, *a):
            self.t = time.perf_counter()

        def on_train_epoch_end(self, *a):
            self.seconds = time.perf_counter() - self.t

    def run():
        timer = EpochTimer()
        module = build_module(hidden)
        trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             log_every_n_steps=CONF.trainer.log_every_n_steps,
                             enable_model_summary=False, callbacks=[timer], accelerator="auto", devices=1,
                             num_sanity_val_steps=0, limit_val_batches=0, deterministic=True)
        trainer.fit(module, loader)
        return timer.seconds
    return run


def timed(fn) -> float:
    t = time.perf_counter()
    inner = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return inner if isinstance(inner, float) else time.perf_counter() - t


def median_interleaved(fns: dict, repeats: int) -> dict:
    for fn in fns.values():  # warm-up
        timed(fn)
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(timed(fn))
    return {k: statistics.median(v) for k, v in times.items()}


def random_idx_files(root: Path) -> Path:
    """MNIST-shaped random IDX files: memory and time do not depend on pixel values."""
    import numpy as np

    from astdp.data.idx import write_idx

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60000), ("t10k", 10000)):
        write_idx(root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    return root


def peak_rss_of_training(preset: str, batches: int, data_root: str, verify: bool) -> float:
    """Peak resident memory (GB) of an `astdp-train experiment=<preset>` process."""
    cmd = [sys.executable, "-m", "astdp.stages.train", f"experiment={preset}", "logger=none", "trainer.max_epochs=1",
           f"data.root={data_root}", f"data.verify={verify}",
           f"+trainer.limit_train_batches={batches}", "+trainer.limit_val_batches=0", "trainer.enable_progress_bar=false",
           "ckpt_path=/tmp/astdp-bench/last.ckpt", "hydra.run.dir=/tmp/astdp-bench"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(cmd, check=True, capture_output=True, cwd=Path(__file__).resolve().parents[1])
    return max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer batches and repeats")
    ap.add_argument("--data-root", default="data/mnist")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--out", type=Path, help="also write the JSON result here (astdp-results reads results/bench.json)")
    args = ap.parse_args()
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x, y, xt, yt, source = load_data(args.data_root, device)
    batch, hidden = CONF.data.batch_size, list(CONF.model.net.hidden)
    n = 200 if args.quick else len(x) // batch
    repeats = 3 if args.quick else 5
    epoch_batches = -(-55000 // batch)  # the training split of the pipeline
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} "
          f"cpu={platform.processor() or platform.machine()} data={source} batches/measure={n}")

    run_astdp, net = astdp_loop(x, y, hidden, batch, n)
    # Each ratio from its own pair, interleaved: a third loop run between the two measured ones
    # leaves the allocator and the caches in its own state, and that read as Lightning's cost.
    t = median_interleaved({"backprop": backprop_loop(x, y, hidden, batch, n), "astdp": run_astdp}, repeats)
    pair = median_interleaved({"astdp": run_astdp, "lightning": lightning_loop(x, y, hidden, batch, n)}, repeats)
    t["lightning"], t["astdp_beside_lightning"] = pair["lightning"], pair["astdp"]
    # what the plays beyond the paper cost: the same network with the paper's plays, against the same twin
    paper = median_interleaved({"backprop": backprop_loop(x, y, hidden, batch, n),
                                "astdp": astdp_loop(x, y, hidden, batch, n, PAPER)[0]}, repeats)
    with torch.no_grad():
        t_eval = median_interleaved({"eval": lambda: [net.classify(xb, CONF.evaluate.settle_steps) for xb in xt.split(1000)]},
                                    repeats)["eval"]
    per_epoch = {k: t[k] / n * epoch_batches for k in ("backprop", "astdp", "lightning")}
    rows = [("backprop MLP (autograd)", t["backprop"]), ("aSTDP bare core loop", t["astdp"]),
            ("aSTDP Lightning loop", t["lightning"]),
            ("aSTDP bare loop, the paper's plays", paper["astdp"])]
    shape = "-".join(map(str, [784, *hidden, 10]))
    print(f"\n{f'training loop, {shape}, batch {batch}':40s} {'samples/s':>12s} {'s/epoch (55k)':>14s}")
    for name, secs in rows:
        print(f"{name:40s} {n * batch / secs:12,.0f} {secs / n * epoch_batches:14.2f}")
    print(f"{f'aSTDP evaluation (classify, {CONF.evaluate.settle_steps} steps)':40s} {len(xt) / t_eval:12,.0f}")
    result = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "quick": args.quick,
        "astdp_vs_backprop_epoch_ratio": round(t["astdp"] / t["backprop"], 3),
        "lightning_overhead_ratio": round(t["lightning"] / t["astdp_beside_lightning"], 3),
        "paper_plays_vs_backprop_epoch_ratio": round(paper["astdp"] / paper["backprop"], 3),
        "epoch_s": {k: round(v, 2) for k, v in per_epoch.items()},
        "eval_samples_per_s": round(len(xt) / t_eval),
    }
    real = source.startswith(CONF.data.name)
    data_root = args.data_root if real else str(random_idx_files(Path("/tmp/astdp-bench/data")))
    result["peak_rss_gb_shifts_train"] = round(peak_rss_of_training("shifts", 50, data_root, real), 3)
    print(f"\npeak memory of an `astdp-train experiment=shifts` process: {result['peak_rss_gb_shifts_train']:.2f} GB")

    if not args.no_scaling:
        m = 50 if args.quick else 200
        scaling = []
        print(f"\n{'network':>12s} {'hidden':>20s} {'batch':>5s} {'aSTDP s/epoch':>14s} {'backprop s/epoch':>17s} "
              f"{'ratio':>6s}")
        width = SHAPES.model.net.hidden[0]  # the invariant preset's width, one to three layers
        rows = [(CONF, BASELINE, h) for h in ([250], [500], [1000], [2000], [500, 500], [500, 500, 500])]
        rows += [(SHAPES, INVARIANT_TWIN, [width] * n) for n in (1, 2, 3)]
        rows += [(SHAPES, INVARIANT_TWIN, [300] * n) for n in (1, 2, 3)]  # the depth table's narrow rows (README, "Depth")
        for conf, twin, h in rows:
            b = conf.data.batch_size
            epoch = -(-55000 // b)
            ts = median_interleaved({"astdp": astdp_loop(x, y, h, b, m, conf)[0],
                                     "backprop": backprop_loop(x, y, h, b, m, twin)}, 3)
            ea, eb = ts["astdp"] / m * epoch, ts["backprop"] / m * epoch
            kind = conf.model.net._target_.rsplit(".", 1)[1]
            scaling.append({"net": kind, "hidden": h, "batch": b, "astdp_epoch_s": round(ea, 2),
                            "backprop_epoch_s": round(eb, 2)})
            print(f"{kind:>12s} {str(h):>20s} {b:5d} {ea:14.2f} {eb:17.2f} {ea / eb:6.2f}")
        result["scaling"] = scaling
    print(json.dumps(result))
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    with flushed_denormals():  # as astdp-train trains: time what it runs
        main()
