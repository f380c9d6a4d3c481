"""Download stage: the dataset's four IDX files under ``data.root``, each verified."""
from __future__ import annotations

from omegaconf import DictConfig

from astdp.config import sections
from astdp.stages._cli import cli

PARAMS = ["data.root", "data.files", "data.mirrors", "data.verify"]  # as dvc.yaml declares


@cli
def main(cfg: DictConfig) -> None:
    from astdp.data.download import download

    data = sections(cfg, PARAMS).data
    # each file fetched says where from (one line); this says what is there, once
    paths = download(data.root, list(data.mirrors), dict(data.files), data.verify)
    print(f"{len(paths)} files in {data.root}" + (", verified" if data.verify else ""))


if __name__ == "__main__":
    main()
