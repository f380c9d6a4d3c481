"""Evaluate stage: accuracy on the official test set, per class, confusion matrix, in-painting."""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from astdp.config import sections
from astdp.stages._cli import cli, output_dir, progress
from astdp.tracking import model_artifact_name, used, wandb_logger

PARAMS = ["name", "ckpt_path", "data", "evaluate", "logger"]  # as dvc.yaml declares


def probe_and_inpaint(net, data, x: torch.Tensor, y: torch.Tensor, ev: DictConfig, say=lambda what: None) -> dict:
    """Each hidden layer's own linear read-out, and in-painting of ``x`` beside three fills that
    know nothing of the network: blank, the mean training image, the mean of the 10 training
    images nearest on the visible half (k-NN). The references are the images the network
    learned from (the training split, without the validation draw)."""
    from astdp.measure.inpaint import fills
    from astdp.measure.probe import probe_layers

    device, steps = y.device, ev.settle_steps
    x_train, y_train = (t.to(device) for t in data.train_val()["train"])
    batches = lambda t: t.split(ev.batch_size)
    accuracy = lambda pred: round((pred == y).float().mean().item(), 5)
    readout = probe_layers(lambda b: net.hidden_codes(b, steps), (x_train, y_train), (x, y), ev.batch_size)
    say(f"each hidden layer's linear read-out {readout}")
    known, filled, knn = fills(net, x, x_train, ev)
    occluded = ~known  # the pixels to fill
    mse = lambda fill: round((fill - x)[occluded].square().mean().item(), 6)
    return {
        # linear read-out of each hidden layer's code, bottom first: the accuracy of unsupervised
        # learning, and whether every layer does work
        "readout_accuracy": readout,
        "inpaint_occluded": ev.occlude,
        "inpaint_mse": mse(filled),
        "inpaint_mse_blank": mse(torch.zeros_like(x)),
        "inpaint_mse_mean": mse(x_train.mean(0).expand_as(x)),
        "inpaint_mse_knn": mse(knn),
        # the network's labels for the occluded images (it fills them in first), and for the k-NN fill
        "occluded_accuracy": accuracy(torch.cat([net.classify(xb, ev.occluded_steps, kb)
                                                 for xb, kb in zip(batches(x), batches(known))])),
        "occluded_accuracy_knn": accuracy(torch.cat([net.classify(b, steps) for b in batches(knn)])),
    }


@torch.no_grad()
def evaluate(cfg: DictConfig) -> dict:
    """Write ``metrics/eval.json`` and ``plots/confusion.json``; returns the metrics.

    The model is the checkpoint's, built from the config it carries, whatever ``model``
    says now; the test split comes through the datamodule. ``evaluate.measure_on=val``
    measures the validation images instead (a search must not see a test image), every key
    ending ``_val`` (``test_accuracy`` is ``accuracy_val``).
    """
    cfg = sections(cfg, PARAMS)
    from hydra.utils import instantiate

    from astdp.io import write_json, write_metrics
    from astdp.training.modules import ASTDPModule
    from astdp.training.checkpoints import load_model

    say = progress("evaluate")
    ckpt = output_dir() / cfg.ckpt_path  # the run folder's (an absolute path as it is)
    module = load_model(ckpt)
    device = module.device
    data = instantiate(cfg.data)
    on_test = cfg.evaluate.measure_on == "test"
    if on_test:
        data.setup("test")
        x, y = (torch.cat(t).to(device) for t in zip(*data.test_dataloader()))
    else:
        x, y = (t.to(device) for t in data.train_val()["val"])
    if isinstance(module, ASTDPModule):  # as the key says, whatever the checkpoint validated with
        predict = lambda b: module.net.classify(b, cfg.evaluate.settle_steps)
    else:
        predict = module.predict_labels
    pred = torch.cat([predict(xb) for xb in x.split(cfg.evaluate.batch_size)])
    from torchmetrics.functional.classification import multiclass_accuracy, multiclass_confusion_matrix

    n = data.n_classes
    confusion = multiclass_confusion_matrix(pred, y, n).cpu()  # rows: true class, columns: predicted
    per_class = multiclass_accuracy(pred, y, n, average=None).tolist()
    metrics = {
        "test_accuracy": round((pred == y).float().mean().item(), 5),
        "per_class_accuracy": {name: round(a, 5) for name, a in zip(data.classes, per_class)},
        "confusion_matrix": confusion.tolist(),
    }
    say(f"{cfg.evaluate.measure_on} accuracy {metrics['test_accuracy']}")
    if isinstance(module, ASTDPModule):  # read-outs and in-painting need the aSTDP network
        metrics.update(probe_and_inpaint(module.net, data, x, y, cfg.evaluate, say))
    if not on_test:
        metrics = {("accuracy" if k == "test_accuracy" else k) + "_val": v for k, v in metrics.items()}
    out = output_dir()
    write_metrics(out, "eval", metrics)
    rows = [{"actual": data.classes[a], "predicted": data.classes[p]} for a, p in zip(y.tolist(), pred.tolist())]
    write_json(out / "plots" / "confusion.json", rows)
    with wandb_logger(cfg, "evaluate") as logger:
        if logger is not None:  # one evaluation: numbers to the summary, not one-point charts
            import wandb

            run = logger.experiment
            used(logger, model_artifact_name(logger), "model", [ckpt])
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
