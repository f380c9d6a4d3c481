"""Generate stage: class-conditional samples, judged by a strong independent classifier; in-painting grid."""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from astdp.config import sections
from astdp.nets.rule import annealed
from astdp.stages._cli import cli, output_dir, progress
from astdp.tracking import model_artifact_name, used, wandb_logger

PARAMS = ["name", "seed", "ckpt_path", "data", "evaluate.occlude", "evaluate.settle_steps", "evaluate.inpaint_beta",
          "evaluate.inpaint_from", "evaluate.inpaint_rounds", "evaluate.batch_size", "judge.path", "generate",
          "logger"]  # as dvc.yaml declares


def draw(net, labels: torch.Tensor, g: DictConfig, generator: torch.Generator, noise: float | None = None
         ) -> torch.Tensor:
    """Images of the given classes as the ``generate`` config ``g`` asks: each pixel shows its
    mean rate over ``g.window`` independent spike draws of the hidden layers (drive noise
    ``g.noise`` unless ``noise`` says otherwise)."""
    noise = g.noise if noise is None else noise
    return torch.stack([net.generate(labels, g.settle_steps, noise, generator, **sampler(g, g.settle_steps))
                        for _ in range(g.window)]).mean(0)


def sampler(g: DictConfig, steps: int) -> dict:
    """What the ``generate`` config ``g`` asks of a network's ``generate`` for a chain of ``steps``
    (besides the noise): spikes, the inverse temperature (``g.beta`` at every step, or annealed
    from ``g.beta_start``), the label's clamp, and whether h1's code comes from the memory."""
    beta = g.beta if g.beta_start is None else annealed(g.beta_start, g.beta, steps)
    memory = dict(from_memory=True, memory_beta=g.memory_beta) if g.from_memory else {}  # only a joined net takes them
    return dict(sample=g.sample, beta=beta, label_strength=g.label_strength, label_hold=g.label_hold,
                pixel_spikes=g.pixel_spikes, **memory)


def chains(net, labels: torch.Tensor, g: DictConfig, seed: int, steps: int = 8) -> torch.Tensor:
    """(steps, len(labels), pixels): a sample of each label after 1..``steps`` settling steps, as
    the ``generate`` config ``g`` samples. Each step reruns the chain from the same seed, so it is
    the same chain one step further."""
    return torch.stack([net.generate(labels, k, g.noise, torch.Generator(device=labels.device).manual_seed(seed),
                                     **sampler(g, k)) for k in range(1, steps + 1)])


def nearest_training_images(fake: torch.Tensor, real: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Indices (len(fake), k) of the ``k`` real images nearest each fake in the judge's features."""
    return torch.cdist(fake, real).topk(k, largest=False).indices


def shape_features(net, labels: torch.Tensor, g: DictConfig, generator: torch.Generator, judge) -> torch.Tensor:
    """The judge's features of noise-free draws, for measuring variety: drive noise
    (``g.noise``) speckles the pixels, and speckle is not variety of shape. What still varies
    is what the network's own dynamics vary (its hidden spikes)."""
    return judge.embed(draw(net, labels, g, generator, noise=0.0))


@torch.no_grad()
def generate(cfg: DictConfig) -> dict:
    """Write ``samples/*.png`` (samples by class, in-painting, chains settling step by step, samples
    beside their nearest training images) and ``metrics/generate.json``; returns the metrics.

    ``generate.per_class`` samples of each class are judged by the strong judge (a CNN; the
    ``judge`` stage trains it) and compared with real images in its feature space: the
    Frechet distance, beside two references (real training images: the floor; each class's
    mean image: a model that learned only the class means), precision and recall (k = 5)
    and the variety of each class's shapes (:func:`shape_features`). Each measure is taken
    against the test images and, with the suffix ``_val``, against the validation images that
    sampling settings are chosen on (``generate.measure_on=val``: those only, no test image read).
    """
    cfg = sections(cfg, PARAMS)
    from hydra.utils import instantiate

    from astdp.measure.inpaint import fills, inpainted, occlusion_mask
    from astdp.images import save_grid
    from astdp.io import write_metrics
    from astdp.measure.samples import frechet_distance, precision_recall, variety
    from astdp.measure.judge import load_judge
    from astdp.training.modules import ASTDPModule
    from astdp.training.checkpoints import load_model
    from astdp.measure.probe import fit_logistic_regression

    out = output_dir()
    say = progress("generate")
    module = load_model(out / cfg.ckpt_path)  # the run folder's (an absolute path as it is)
    if not isinstance(module, ASTDPModule):
        metrics = {"judge_accuracy": None, "note": f"{type(module).__name__} has no generative path"}
        write_metrics(out, "generate", metrics)
        (out / "samples").mkdir(exist_ok=True)
        return metrics
    net, device, g = module.net, module.device, cfg.generate
    data = instantiate(cfg.data)
    judge, judge_val_accuracy = load_judge(out / cfg.judge.path, device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    labels = torch.arange(data.n_classes, device=device).repeat_interleave(g.per_class)
    images = draw(net, labels, g, gen)
    say(f"{len(images)} samples drawn")

    # measure_on=val: a search of sampling settings, which must not see a test image
    on_test = g.measure_on == "test"
    measured = (("test", ""), ("val", "_val")) if on_test else (("val", "_val"),)
    splits = data.train_val() | ({"test": data.load("test")} if on_test else {})
    x_train, y_train = (t.to(device) for t in splits["train"])
    judged = judge.predict(images)
    fake, shapes = judge.embed(images), shape_features(net, labels, g, gen, judge)
    # References for the distance: as many real training images, and the class means, per class.
    pick = lambda y: torch.cat([(y == c).nonzero()[: g.per_class, 0] for c in range(data.n_classes)])
    means = torch.stack([x_train[y_train == c].mean(0) for c in range(data.n_classes)])[labels]
    references = {"real_train": judge.embed(x_train[pick(y_train)]), "class_means": judge.embed(means)}
    linear = fit_logistic_regression(x_train, y_train, iters=100)  # the earlier, weaker judge: for continuity
    say("references embedded, the linear judge fitted")
    metrics = {
        "judge_accuracy": round((judged == labels).float().mean().item(), 4),
        "judge_per_class": {data.classes[c]: round((judged[labels == c] == c).float().mean().item(), 3)
                            for c in range(data.n_classes)},
        "judge_val_accuracy": judge_val_accuracy,
    }
    if on_test:
        x_test, y_test = (t.to(device) for t in splits["test"])
        metrics["judge_test_accuracy"] = round((judge.predict(x_test) == y_test).float().mean().item(), 5)
    # Against the test images (reported) and the validation images (what sampling settings are
    # chosen on): the same measures, so a setting tuned on one is checked on the other.
    for split, suffix in measured:
        x_real, y_real = (t.to(device) for t in splits[split])
        real = judge.embed(x_real)
        chosen = pick(y_real)  # as many real images of each class as there are samples
        precision, recall = precision_recall(real[chosen], fake)
        spread = variety(shapes, labels, real[chosen], y_real[chosen])
        fid = lambda f: round(frechet_distance(f, real), 3)
        metrics |= {f"fid{suffix}": fid(fake)} | {f"fid_{k}{suffix}": fid(f) for k, f in references.items()}
        metrics |= {
            f"precision{suffix}": round(precision, 4),
            f"recall{suffix}": round(recall, 4),
            f"variety_ratio{suffix}": round(sum(spread.values()) / len(spread), 4),
        }
        say(f"measured against the {split} images: Frechet distance {metrics[f'fid{suffix}']}")
        if split == "test":
            metrics["variety_per_class"] = {data.classes[c]: round(v, 4) for c, v in spread.items()}
        # The judge's verdict on half-occluded images completed by the network and by memory (k-NN)
        _, net_fill, knn = fills(net, x_real, x_train, cfg.evaluate)
        judge_right = lambda fill: round((judge.predict(fill) == y_real).float().mean().item(), 4)
        metrics |= {f"inpaint_judge_accuracy{suffix}": judge_right(net_fill),
                    f"inpaint_judge_accuracy_knn{suffix}": judge_right(knn)}
        say(f"half-occluded {split} images completed and judged")
    metrics["linear_judge_accuracy"] = round((linear(images).argmax(1) == labels).float().mean().item(), 4)
    shape = data.image_shape
    shown = torch.cat([images[labels == c][:10] for c in range(data.n_classes)])
    samples = save_grid(out / "samples" / "digits.png", shown, min(g.per_class, 10), shape)
    # In-painting: occluded / filled in / original, ten images of the first measured split.
    x = splits[measured[0][0]][0][:10].to(device)
    known = occlusion_mask(10, cfg.evaluate.occlude, shape, device)
    filled = inpainted(net, x, known, cfg.evaluate)
    inpaint = save_grid(out / "samples" / "inpaint.png", torch.cat([x * known, filled, x]), 10, shape)
    # A chain of each class settling, and one sample of each class beside its 5 nearest training
    # images in the judge's features (a sample that is a copy would sit on its first neighbour).
    steps = max(8, g.settle_steps)
    frames = chains(net, torch.arange(data.n_classes, device=device), g, cfg.seed, steps)
    chain = save_grid(out / "samples" / "chains.png", frames.transpose(0, 1).flatten(0, 1), steps, shape)  # a class a row
    first = torch.stack([(labels == c).nonzero()[0, 0] for c in range(data.n_classes)])
    near = nearest_training_images(fake[first], judge.embed(x_train))
    nearest = save_grid(out / "samples" / "nearest.png",
                        torch.cat([images[first, None], x_train[near]], 1).flatten(0, 1), 6, shape)
    write_metrics(out, "generate", metrics)
    with wandb_logger(cfg, "generate") as logger:
        if logger is not None:  # one measurement: numbers to the summary, not one-point charts
            import wandb

            run = logger.experiment
            used(logger, model_artifact_name(logger), "model", [out / cfg.ckpt_path])
            used(logger, f"judge-{data.name}", "judge", [out / cfg.judge.path])
            run.summary.update({k: v for k, v in metrics.items() if isinstance(v, float)})
            shown_labels = torch.cat([labels[labels == c][:10] for c in range(data.n_classes)])
            verdicts = torch.cat([judged[labels == c][:10] for c in range(data.n_classes)])
            run.log({"samples_table": wandb.Table(
                columns=["class", "sample", "judge says"],
                data=[[data.classes[c], wandb.Image(img.view(*shape).cpu().numpy()), data.classes[v]]
                      for c, img, v in zip(shown_labels.tolist(), shown, verdicts.tolist())])})
            # One key each: the grids differ in size (W&B warns about, and misdraws, a list of unequal images).
            logger.log_image(key="samples", images=[samples],
                             caption=[f"{data.name} samples by class, rows: {', '.join(data.classes)}"])
            logger.log_image(key="inpainting", images=[inpaint], caption=["occluded / filled in / original"])
            logger.log_image(key="chains", images=[chain], caption=[f"rows: classes; columns: settling steps 1-{steps}"])
            logger.log_image(key="nearest", images=[nearest],
                             caption=["each row: a sample, then its 5 nearest training images (judge's features)"])
    return metrics


@cli
def main(cfg: DictConfig) -> None:
    m = generate(cfg)
    print(" ".join(f"{k}={v}" for k, v in m.items() if isinstance(v, (int, float, str))))


if __name__ == "__main__":
    main()
