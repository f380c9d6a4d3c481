"""A dataset is a config choice: Fashion-MNIST, and any IDX dataset, through every stage."""
import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from astdp.config import validate
from astdp.errors import DataError
from tests.conftest import ROOT, compose_config, run_pipeline, write_digits

SHARED_FASHION = ROOT.parent / "shared" / "fashion-mnist"


def test_fashion_mnist_is_a_config_choice():
    fashion = compose_config(["data=fashion_mnist"])
    validate(fashion)
    assert fashion.data.name == "fashion_mnist" and fashion.data.root == "data/fashion_mnist"
    assert fashion.data.classes[9] == "Ankle boot" and fashion.data.batch_size == compose_config().data.batch_size
    assert fashion.model.net.n_labels == 10 and list(fashion.model.net.image_shape) == [28, 28]
    assert any(m.startswith("deb:dataset-fashion-mnist#sha256=") for m in fashion.data.mirrors)
    assert set(fashion.data.files.values()).isdisjoint(compose_config().data.files.values())


def test_fashion_presets_compare_like_with_like():
    aSTDP, twin = compose_config(["experiment=fashion"]), compose_config(["experiment=fashion_baseline"])
    assert aSTDP.data == twin.data and aSTDP.data.name == "fashion_mnist"
    assert aSTDP.model.net.hidden == twin.model.net.hidden and aSTDP.trainer.max_epochs == twin.trainer.max_epochs
    assert twin.model._target_ == "astdp.training.modules.BackpropModule"


def small_dataset(root: Path) -> tuple[Path, list[str]]:
    """Three classes of 20x16 images: nothing about 28x28 or ten classes may be assumed."""
    write_digits(root, n_train=600, n_test=90, shape=(20, 16), n_classes=3)
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.iterdir()}
    return root, [f"data.files.{name}={digest}" for name, digest in digests.items()]


def test_another_idx_dataset_runs_every_stage_with_its_class_names(tmp_path, monkeypatch):
    root, files = small_dataset(tmp_path / "shapes")
    monkeypatch.chdir(tmp_path)
    cfg = compose_config([f"data.root={root}", "data.name=shapes", "data.classes=[circle,square,star]",
                          "data.n_classes=3", "data.image_shape=[20,16]", "data.val_size=30", *files,
                          "data.max_shift=1", "model=small", "trainer.max_epochs=8", "trainer.enable_progress_bar=false",
                          "logger=none", "generate.per_class=5", "judge.epochs=3", "judge.batch_size=32",
                          "evaluate.batch_size=100"])
    metrics = run_pipeline(cfg)
    assert metrics["eval"]["test_accuracy"] > 0.6  # chance is 1/3
    assert list(metrics["eval"]["per_class_accuracy"]) == ["circle", "square", "star"]
    assert list(metrics["generate"]["judge_per_class"]) == ["circle", "square", "star"]
    assert {row["actual"] for row in json.loads(Path("plots/confusion.json").read_text())} == {"circle", "square", "star"}
    # The grids have the dataset's shape: 3 rows of 5 samples of 20x16, 2x upscaled with 2-pixel gaps.
    assert Image.open("samples/digits.png").size == (2 * (5 * 18 + 2), 2 * (3 * 22 + 2))


def test_wrong_checksum_of_the_chosen_dataset_is_rejected(tmp_path):
    root, files = small_dataset(tmp_path / "shapes")
    from hydra.utils import instantiate

    cfg = compose_config(["data=fashion_mnist", f"data.root={root}", "data.classes=[a,b,c]", "data.n_classes=3",
                          "data.image_shape=[20,16]"])  # Fashion-MNIST's checksums, other files
    with pytest.raises(DataError, match="train-images-idx3-ubyte: checksum mismatch"):
        instantiate(cfg.data).load("train")


def test_class_count_must_match_the_names():
    with pytest.raises(Exception, match="data.n_classes"):
        validate(compose_config(["data.n_classes=9"]))


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_FASHION.is_dir(), reason="needs the local Fashion-MNIST mirror ../shared/fashion-mnist")
def test_short_run_on_real_fashion_mnist_is_clearly_above_chance(tmp_path, monkeypatch):
    from astdp.stages.evaluate import evaluate
    from astdp.stages.train import train

    monkeypatch.chdir(tmp_path)
    cfg = compose_config(["data=fashion_mnist", f"data.mirrors=[{SHARED_FASHION}]", f"data.root={tmp_path / 'fm'}",
                          "logger=none", "trainer.max_epochs=1", "+trainer.limit_train_batches=150",
                          "trainer.enable_progress_bar=false"])
    train(cfg)  # prepare_data fetches and verifies the files
    metrics = evaluate(cfg)
    assert metrics["test_accuracy"] > 0.6 and list(metrics["per_class_accuracy"])[0] == "T-shirt/top"


@pytest.mark.slow
def test_fashion_mnist_from_debian_package_is_verified(tmp_path):
    """The offline route of machines that reach only a Debian archive: apt-get download, pinned."""
    from astdp.data.download import download

    data = compose_config(["data=fashion_mnist"]).data
    deb = [m for m in data.mirrors if m.startswith("deb:")]
    paths = download(tmp_path / "fm", deb, dict(data.files), True)
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths] == list(data.files.values())
    tampered = deb[0][:-4] + "0000"  # another digest: the package is not opened
    with pytest.raises(DataError, match="not the pinned"):
        download(tmp_path / "fm2", [tampered], dict(data.files), True)
