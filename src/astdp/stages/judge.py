"""Judge stage: train the strong judge (a small CNN, backprop) once per dataset; DVC caches it."""
from __future__ import annotations

from omegaconf import DictConfig

from astdp.config import sections
from astdp.stages._cli import cli, output_dir

PARAMS = ["seed", "data", "judge"]  # as dvc.yaml declares


def make_judge(cfg: DictConfig) -> dict:
    """Write ``judge.path``; returns its accuracy on the validation images, which it does not
    learn from (the test images are left to the generate stage)."""
    cfg = sections(cfg, PARAMS)
    import torch
    from hydra.utils import instantiate

    from astdp.measure.judge import save_judge, train_judge

    data = instantiate(cfg.data)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    (x, y), (xv, yv) = ((t.to(device) for t in split) for split in data.train_val().values())
    j = cfg.judge
    x, y = x[: j.train_size], y[: j.train_size]
    judge = train_judge(x, y, data.image_shape, data.n_classes, j.epochs, j.lr, j.batch_size, cfg.seed, progress=True)
    accuracy = round((judge.predict(xv) == yv).float().mean().item(), 5)
    save_judge(judge.cpu(), output_dir() / j.path, accuracy)
    return {"judge_val_accuracy": accuracy}


@cli
def main(cfg: DictConfig) -> None:
    print(" ".join(f"{k}={v}" for k, v in make_judge(cfg).items()))


if __name__ == "__main__":
    main()
