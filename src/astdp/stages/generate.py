"""Generate stage: class-conditional digits, judged by an independent classifier; in-painting grid."""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from astdp.stages._cli import cli, output_dir, sections, wandb_logger

PARAMS = ["name", "seed", "ckpt_path", "data", "evaluate.occlude", "evaluate.settle_steps", "generate",
          "logger"]  # as dvc.yaml declares


def mean_pairwise_distance(images: torch.Tensor) -> float:
    d = torch.cdist(images, images)
    n = len(images)
    return (d.sum() / (n * (n - 1))).item()


@torch.no_grad()
def generate(cfg: DictConfig) -> dict:
    """Write ``samples/*.png`` and ``metrics/generate.json``; returns the metrics."""
    cfg = sections(cfg, PARAMS)
    from hydra.utils import instantiate

    from astdp.images import occlusion_mask, save_grid
    from astdp.io import write_json
    from astdp.lit import ASTDPModule, load_model
    from astdp.readout import fit_logistic_regression

    out = output_dir()
    module = load_model(cfg.ckpt_path)
    if not isinstance(module, ASTDPModule):
        metrics = {"judge_accuracy": None, "note": f"{type(module).__name__} has no generative path"}
        write_json(out / "metrics" / "generate.json", metrics)
        (out / "samples").mkdir(exist_ok=True)
        return metrics
    net, device, g = module.net, module.device, cfg.generate
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    labels = torch.arange(10, device=device).repeat_interleave(g.per_class)
    images = net.generate(labels, g.settle_steps, g.noise, gen, sample=g.sample)

    data = instantiate(cfg.data)
    x_train, y_train = (t.to(device) for t in data.load("train"))
    x_test, y_test = (t.to(device) for t in data.load("test"))
    judge = fit_logistic_regression(x_train, y_train, iters=100)
    judged = judge(images).argmax(1)
    # Variety: spread of a class's samples relative to the spread of real test digits of that class.
    variety = {}
    for c in range(10):
        fake = images[labels == c]
        real = x_test[y_test == c][: max(g.per_class, 100)]
        variety[str(c)] = round(mean_pairwise_distance(fake) / mean_pairwise_distance(real), 4)
    metrics = {
        "judge_accuracy": round((judged == labels).float().mean().item(), 4),
        "judge_per_class": {str(c): round((judged[labels == c] == c).float().mean().item(), 3) for c in range(10)},
        "judge_test_accuracy": round((judge(x_test).argmax(1) == y_test).float().mean().item(), 4),
        "variety_ratio": round(sum(variety.values()) / 10, 4),
        "variety_per_class": variety,
        "samples_per_class": g.per_class,
        "sample": g.sample,
        "noise": g.noise,
    }
    digits = save_grid(out / "samples" / "digits.png", images, ncol=g.per_class)
    # In-painting: occluded / filled in / original, ten test digits.
    x = x_test[:10]
    known = occlusion_mask(10, cfg.evaluate.occlude, device)
    filled = net.inpaint(x, known, cfg.evaluate.settle_steps + 2)
    inpaint = save_grid(out / "samples" / "inpaint.png", torch.cat([x * known, filled, x]), ncol=10)
    write_json(out / "metrics" / "generate.json", metrics)
    with wandb_logger(cfg, "generate") as logger:
        if logger is not None:
            logger.log_metrics({"judge_accuracy": metrics["judge_accuracy"], "variety_ratio": metrics["variety_ratio"]})
            logger.log_image(key="samples", images=[digits, inpaint], caption=["digits by class (rows 0-9)",
                                                                                "occluded / filled in / original"])
    return metrics


@cli
def main(cfg: DictConfig) -> None:
    m = generate(cfg)
    print(" ".join(f"{k}={v}" for k, v in m.items() if isinstance(v, (int, float, str))))


if __name__ == "__main__":
    main()
