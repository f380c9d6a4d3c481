"""Download stage: the four MNIST files under ``data.root``, each verified."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from astdp.config import validate
from astdp.download import download
from astdp.stages._cli import CONFIG_PATH, stage


@hydra.main(version_base=None, config_path=CONFIG_PATH, config_name="config")
@stage
def main(cfg: DictConfig) -> None:
    conf = validate(cfg)
    for path in download(conf.data.root, list(conf.data.mirrors)):
        print(f"ok {path}")


if __name__ == "__main__":
    main()
