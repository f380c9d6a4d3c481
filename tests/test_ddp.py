"""2-process DDP (gloo) ends with the same weights as one process on the same global batches."""
import subprocess
import sys

import torch

from tests.conftest import ROOT


def test_ddp_matches_single_process(tiny_mnist, tmp_path):
    script = ROOT / "tests" / "ddp_script.py"
    for mode in ("single", "ddp"):
        done = subprocess.run([sys.executable, str(script), str(tmp_path / mode), str(tiny_mnist), mode],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    single = torch.load(tmp_path / "single/models/last.ckpt", weights_only=True)["state_dict"]
    ddp = torch.load(tmp_path / "ddp/models/last.ckpt", weights_only=True)["state_dict"]
    assert single.keys() == ddp.keys()
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], rtol=1e-5, atol=1e-6)
    assert torch.load(tmp_path / "ddp/models/last.ckpt", weights_only=True)["global_step"] == 6
