"""Evaluate stage: accuracy on the official test set, per class, confusion matrix, in-painting."""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from astdp.stages._cli import cli, output_dir, sections, wandb_logger

PARAMS = ["name", "ckpt_path", "data", "evaluate", "logger"]  # as dvc.yaml declares


@torch.no_grad()
def evaluate(cfg: DictConfig) -> dict:
    """Write ``metrics/eval.json`` and ``plots/confusion.json``; returns the metrics.

    The model is the checkpoint's, built from the config it carries, whatever ``model``
    says now; the test split comes through the datamodule.
    """
    cfg = sections(cfg, PARAMS)
    from hydra.utils import instantiate

    from astdp.images import occlusion_mask
    from astdp.io import write_json, write_metrics
    from astdp.lit import ASTDPModule, load_model
    from astdp.readout import fit_logistic_regression

    module = load_model(cfg.ckpt_path)
    device = module.device
    data = instantiate(cfg.data)
    data.setup("test")
    ys, preds = [], []
    for xb, yb in data.test_dataloader():
        preds.append(module.predict_labels(xb.to(device)))
        ys.append(yb.to(device))
    y, pred = torch.cat(ys), torch.cat(preds)
    n = data.n_classes
    confusion = torch.bincount(y * n + pred, minlength=n * n).view(n, n).cpu()
    per_class = (confusion.diag() / confusion.sum(1).clamp(min=1)).tolist()
    metrics = {
        "test_accuracy": round((pred == y).float().mean().item(), 5),
        "per_class_accuracy": {name: round(a, 5) for name, a in zip(data.classes, per_class)},
        "confusion_matrix": confusion.tolist(),
    }
    if isinstance(module, ASTDPModule):  # read-out and in-painting need the aSTDP network
        net, steps = module.net, cfg.evaluate.settle_steps
        x = data.splits["test"][0].to(device)
        batches = lambda t: t.split(cfg.evaluate.batch_size)
        # Linear read-out of the top hidden code: the accuracy of unsupervised learning.
        x_train, y_train = (t.to(device) for t in data.load("train"))
        code = lambda t: torch.cat([net.hidden_code(b, steps) for b in batches(t)])
        readout = fit_logistic_regression(code(x_train), y_train)
        metrics["readout_accuracy"] = round((readout(code(x)).argmax(1) == y).float().mean().item(), 5)
        known = occlusion_mask(len(x), cfg.evaluate.occlude, data.image_shape, device)
        filled = torch.cat([net.inpaint(xb, kb, steps + 2) for xb, kb in zip(batches(x), batches(known))])
        hidden = ~known
        occluded_pred = torch.cat([net.classify(xb, steps, kb) for xb, kb in zip(batches(x), batches(known))])
        metrics.update({
            "inpaint_occluded": cfg.evaluate.occlude,
            "inpaint_mse": round(((filled - x)[hidden]).square().mean().item(), 6),
            "inpaint_mse_blank": round(x[hidden].square().mean().item(), 6),  # filling with 0, for scale
            "occluded_accuracy": round((occluded_pred == y).float().mean().item(), 5),
        })
    out = output_dir()
    write_metrics(out, "eval", metrics)
    rows = [{"actual": data.classes[a], "predicted": data.classes[p]} for a, p in zip(y.tolist(), pred.tolist())]
    write_json(out / "plots" / "confusion.json", rows)
    with wandb_logger(cfg, "evaluate") as logger:
        if logger is not None:  # one evaluation: numbers to the summary, not one-point charts
            import wandb

            run = logger.experiment
            run.summary.update({k: v for k, v in metrics.items() if isinstance(v, float)})
            run.log({"per_class_accuracy": wandb.Table(columns=["class", "accuracy"],
                                                       data=[[c, a] for c, a in metrics["per_class_accuracy"].items()]),
                     "confusion_matrix": wandb.plot.confusion_matrix(y_true=y.tolist(), preds=pred.tolist(),
                                                                     class_names=data.classes)})
    return metrics


@cli
def main(cfg: DictConfig) -> None:
    m = evaluate(cfg)
    print(" ".join(f"{k}={v}" for k, v in m.items() if isinstance(v, (int, float, str))))


if __name__ == "__main__":
    main()
