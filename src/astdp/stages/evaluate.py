"""Evaluate stage: accuracy on the official test set, per class, confusion matrix, in-painting."""
from __future__ import annotations

import hydra
import torch
from omegaconf import DictConfig

from astdp.config import validate
from astdp.stages._cli import CONFIG_PATH, load_model, occlusion_mask, output_dir, stage, wandb_logger


@torch.no_grad()
def evaluate(cfg: DictConfig) -> dict:
    """Write ``metrics/eval.json`` and ``plots/confusion.json``; returns the metrics."""
    conf = validate(cfg)
    from astdp.io import write_json
    from astdp.lit import ASTDPModule
    from astdp.mnist import load_split
    from astdp.readout import fit_logistic_regression

    module = load_model(conf.ckpt_path)
    x, y = (t.to(module.device) for t in load_split(conf.data.root, "test", conf.data.verify))
    batches = lambda t: t.split(conf.evaluate.batch_size)
    pred = torch.cat([module.predict_labels(xb) for xb in batches(x)])
    confusion = torch.bincount(y * 10 + pred, minlength=100).view(10, 10).cpu()
    per_class = (confusion.diag() / confusion.sum(1).clamp(min=1)).tolist()
    metrics = {
        "test_accuracy": round((pred == y).float().mean().item(), 5),
        "per_class_accuracy": {str(c): round(a, 5) for c, a in enumerate(per_class)},
        "confusion_matrix": confusion.tolist(),
    }
    if isinstance(module, ASTDPModule):  # read-out and in-painting need the aSTDP network
        net, steps = module.net, conf.evaluate.settle_steps
        # Linear read-out of the top hidden code: the accuracy of unsupervised learning.
        x_train, y_train = (t.to(x.device) for t in load_split(conf.data.root, "train", conf.data.verify))
        code = lambda t: torch.cat([net.hidden_code(b, steps) for b in batches(t)])
        readout = fit_logistic_regression(code(x_train), y_train)
        metrics["readout_accuracy"] = round((readout(code(x)).argmax(1) == y).float().mean().item(), 5)
        known = occlusion_mask(len(x), conf.evaluate.occlude, x.device)
        filled = torch.cat([net.reconstruct(xb, kb, steps + 2) for xb, kb in zip(batches(x), batches(known))])
        hidden = ~known
        occluded_pred = torch.cat([net.classify(xb, steps, kb) for xb, kb in zip(batches(x), batches(known))])
        metrics.update({
            "inpaint_occluded": conf.evaluate.occlude,
            "inpaint_mse": round(((filled - x)[hidden]).square().mean().item(), 6),
            "inpaint_mse_blank": round(x[hidden].square().mean().item(), 6),  # filling with 0, for scale
            "occluded_accuracy": round((occluded_pred == y).float().mean().item(), 5),
        })
    out = output_dir()
    write_json(out / "metrics" / "eval.json", metrics)
    rows = [{"actual": int(a), "predicted": int(p)} for a, p in zip(y.tolist(), pred.tolist())]
    write_json(out / "plots" / "confusion.json", rows)
    with wandb_logger(cfg, "evaluate") as logger:
        if logger is not None:
            logger.log_metrics({k: v for k, v in metrics.items() if isinstance(v, float)}
                               | {f"per_class_accuracy/{c}": a for c, a in metrics["per_class_accuracy"].items()})
    return metrics


@hydra.main(version_base=None, config_path=CONFIG_PATH, config_name="config")
@stage
def main(cfg: DictConfig) -> None:
    m = evaluate(cfg)
    print(" ".join(f"{k}={v}" for k, v in m.items() if isinstance(v, (int, float, str))))


if __name__ == "__main__":
    main()
