"""Train on the synthetic data; optionally SIGKILL the process at the start of an epoch.

Usage: python tests/resume_script.py OUT_DIR DATA_ROOT KILL_AT_EPOCH|resume|full [OVERRIDE...]
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import compose_config  # noqa: E402


if __name__ == "__main__":
    out, root, mode, *extra = sys.argv[1:]
    os.makedirs(out, exist_ok=True)
    os.chdir(out)
    from astdp.stages.train import train

    overrides = [f"data.root={root}", "data.verify=false", "data.val_size=100", "model=small", "logger=none",
                 "trainer.max_epochs=4", "trainer.enable_progress_bar=false", "data.batch_size=32", "data.max_shift=1", *extra]
    if mode == "resume":
        overrides.append("resume=true")
    elif mode != "full":
        overrides += ["+callbacks.kill._target_=stop_callbacks.KillAt", f"+callbacks.kill.epoch={mode}"]
    sys.path.insert(0, str(Path(__file__).parent))
    train(compose_config(overrides))
