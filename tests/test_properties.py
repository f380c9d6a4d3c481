"""Property tests of bad input (Hypothesis): config overrides, damaged data files, damaged checkpoints.

Each property is tried on many generated cases (``max_examples`` below); a failure prints the
smallest case Hypothesis found.
"""
import gzip
import hashlib

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from astdp.config import validate
from astdp.errors import ConfigError, DataError, StageError
from astdp.training.checkpoints import check_checkpoint
from tests.conftest import MNIST, compose_config, load, write_digits

CASES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BASE = compose_config()


def leaves(node, prefix=""):
    """Every schema-typed key of the composed config (Lightning's own sections are not ours to type)."""
    for key in node:
        path = f"{prefix}{key}"
        if path in ("trainer", "callbacks", "logger") or str(key) == "_target_":
            continue
        value = node._get_node(key)
        if OmegaConf.is_dict(value):
            yield from leaves(value, path + ".")
        else:
            yield path


KEYS = sorted(leaves(BASE))
VALUES = st.one_of(
    st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.text(max_size=12), st.lists(st.integers(-5, 5000), max_size=4), st.just([]), st.just({"x": 1}))


@CASES
@given(key=st.sampled_from(KEYS), value=VALUES)
def test_any_value_of_any_key_is_accepted_or_named(key, value):
    cfg = BASE.copy()
    try:
        OmegaConf.update(cfg, key, value, merge=False)  # what composing an override does
    except OmegaConfBaseException as e:
        assert key in (e.full_key or ""), (key, value, e)
        return
    try:
        validate(cfg)
    except ConfigError as e:
        assert key.rsplit(".", 1)[0] in str(e) and "\n" not in str(e), (key, value, e)


@CASES
@given(section=st.sampled_from(["", "data.", "model.", "model.net.", "model.plays.", "optim.", "evaluate.",
                                "generate."]),
       name=st.from_regex(r"[a-z_]{1,12}", fullmatch=True), value=VALUES)
def test_unknown_keys_are_named(section, name, value):
    key = section + name
    if OmegaConf.select(BASE, key) is not None or key in ("trainer", "callbacks", "logger", "optimized_metric"):
        return  # a real key
    cfg = OmegaConf.create(OmegaConf.to_container(BASE))
    OmegaConf.update(cfg, key, value, force_add=True)  # as `+key=value` forces it in
    with pytest.raises(ConfigError, match=name):
        validate(cfg)


@pytest.fixture(scope="module")
def idx_files(tmp_path_factory):
    """Small IDX files, plain and gzipped, whose checksums stand in for the canonical ones."""
    root = write_digits(tmp_path_factory.mktemp("idx"), n_train=40, n_test=10)
    digests = {n: hashlib.sha256((root / n).read_bytes()).hexdigest() for n in MNIST.files}
    return {n: (root / n).read_bytes() for n in MNIST.files}, digests


def damage(data: bytes, cut: int | None, flips: list[tuple[int, int]]) -> bytes:
    raw = bytearray(data[:cut] if cut is not None else data)
    for pos, bits in flips:
        if raw:
            raw[pos % len(raw)] ^= bits
    return bytes(raw)


DAMAGE = dict(cut=st.one_of(st.none(), st.integers(0, 40000)),
              flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=3))


@CASES
@given(name=st.sampled_from(sorted(MNIST.files)), gz=st.booleans(), **DAMAGE)
def test_damaged_data_files_are_named_never_loaded(idx_files, tmp_path_factory, name, gz, cut, flips):
    files, digests = idx_files
    root = tmp_path_factory.mktemp("damaged")
    for n, data in files.items():
        (root / (n + ".gz" if gz else n)).write_bytes(gzip.compress(data, mtime=0) if gz else data)
    target = root / (name + ".gz" if gz else name)
    original = target.read_bytes()
    damaged = damage(original, cut, flips)
    target.write_bytes(damaged)
    split = "train" if name.startswith("train") else "test"
    try:
        x, y = load(root, split, verify=True, files=digests)
    except DataError as e:
        assert name in str(e) and "\n" not in str(e)
        return
    # Loaded: only if the bytes decode to the very same file (a gzip header flip can be harmless).
    plain = gzip.decompress(damaged) if gz else damaged
    assert plain == files[name]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from astdp.stages.train import train

    root = tmp_path_factory.mktemp("ckpt")
    data = write_digits(root / "data", n_train=100, n_test=20)
    cfg = compose_config([f"data.root={data}", "data.verify=false", "data.val_size=20", "model=small",
                          "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "logger=none",
                          f"ckpt_path={root}/last.ckpt", "callbacks.history.path=curve.json"])
    import os

    cwd = os.getcwd()
    os.chdir(root)
    try:
        train(cfg)
    finally:
        os.chdir(cwd)
    return root / "last.ckpt"  # a path: Hypothesis prints its arguments when a case fails


@CASES
@given(cut=st.one_of(st.none(), st.integers(0, 200000)),
       flips=st.lists(st.tuples(st.integers(0, 10**7), st.integers(1, 255)), min_size=0, max_size=3))
def test_damaged_checkpoints_are_named_never_loaded(checkpoint, tmp_path_factory, cut, flips):
    path = tmp_path_factory.mktemp("bad") / "last.ckpt"
    damaged = damage(checkpoint.read_bytes(), cut, flips)
    path.write_bytes(damaged)
    try:
        check_checkpoint(path)
    except StageError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return
    # Accepted: then its content is the trained run's (a flip in zip metadata or in a storage's
    # device tag, which loading maps to the CPU, changes nothing).
    good = torch.load(path, map_location="cpu", weights_only=True)
    ref = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert all(torch.equal(good["state_dict"][k], ref["state_dict"][k]) for k in ref["state_dict"])


def test_a_checkpoint_saved_under_the_old_module_paths_still_loads(checkpoint, tmp_path):
    """0.18.0 saved `astdp.lit.ASTDPModule` and `astdp.core.ASTDPNet` (with the two keys it took
    only at their off values, and until 0.20.0 the classify play's regularisers beside the
    network); their checkpoints load under the new paths, with the same
    weights, and an unknown path is still refused."""
    from astdp.io import DIGEST_KEY, content_digest
    from astdp.training.checkpoints import load_model
    from astdp.training.targets import MOVED

    old_name = {new: old for old, new in MOVED.items()}
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    ckpt.pop(DIGEST_KEY)
    ckpt["astdp_module"] = old_name[ckpt["astdp_module"]]
    hp = ckpt["hyper_parameters"]
    hp["net"]["_target_"] = old_name[hp["net"]["_target_"]]
    hp["net"] |= {"softmax_labels": False, "dream_noise": 0.0}
    hp |= {"dropout": 0.0, "label_smoothing": 0.0, "input_dropout": 0.0}  # 0.20.0 kept them beside the network
    hp["lr_schedule"]["_target_"] = old_name[hp["lr_schedule"]["_target_"]]
    old = tmp_path / "old.ckpt"
    torch.save({**ckpt, DIGEST_KEY: content_digest(ckpt)}, old)
    model, ref = load_model(old, "cpu"), load_model(checkpoint, "cpu")
    assert type(model.net) is type(ref.net) and model.hparams["net"]["_target_"] == ref.hparams["net"]["_target_"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))

    hp["net"]["_target_"] = "astdp.core.Elsewhere"
    torch.save({**ckpt, DIGEST_KEY: content_digest(ckpt)}, old)
    with pytest.raises(StageError, match="not an astdp checkpoint"):
        check_checkpoint(old)
