"""astdp-demo: its three endpoints called as a script would, its errors, and its page in a browser."""
import base64
import io
import json
import subprocess
import sys
import threading
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
import torch

from astdp.demo import Demo, serve
from astdp.errors import StageError
from astdp.training.checkpoints import load_model
from tests.conftest import needs_chromium


@pytest.fixture(scope="module")
def demo(finished_run):
    """The demo of the session's finished run, served on a free port: (its URL, its model)."""
    folder, data, _ = finished_run
    server = serve(Demo(folder / "models/last.ckpt", data), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", load_model(folder / "models/last.ckpt", "cpu")
    server.shutdown()


def post(url: str, body) -> tuple[int, dict]:
    request = Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urlopen(request) as response:
            return response.status, json.load(response)
    except HTTPError as e:
        return e.code, json.load(e)


def get(url: str) -> dict:
    with urlopen(url) as response:
        return json.load(response)


def test_classify_gives_the_label_units_activities(demo):
    url, model = demo
    image = get(f"{url}/api/test_image?index=3")
    status, out = post(f"{url}/api/classify", {"image": image["image"]})
    x = torch.tensor(image["image"]).view(1, -1)
    expected = model.net.label_activity(x, model.eval_steps)[0]
    assert status == 200 and len(out["activities"]) == 10
    torch.testing.assert_close(torch.tensor(out["activities"]), expected, atol=1e-4, rtol=0)
    assert out["label"] == int(model.predict_labels(x)[0])  # what evaluate scores

    from PIL import Image  # the same image as a PNG
    png = io.BytesIO()
    Image.fromarray((x.view(28, 28) * 255).round().byte().numpy()).save(png, format="PNG")
    status, as_png = post(f"{url}/api/classify", {"png": base64.b64encode(png.getvalue()).decode()})
    assert status == 200 and as_png["label"] == out["label"]


def test_generate_settles_a_sample_step_by_step(demo):
    url, model = demo
    status, out = post(f"{url}/api/generate", {"label": 7, "steps": 4})
    assert status == 200 and len(out["frames"]) == 4 and out["image"] == out["frames"][-1]
    expected = model.net.generate(torch.tensor([7]), 4).view(28, 28)
    torch.testing.assert_close(torch.tensor(out["image"]), expected.clamp(0, 1), atol=1e-4, rtol=0)
    assert out["frames"][0] != out["frames"][-1]  # it moves as it settles


def test_inpaint_keeps_what_is_known_and_fills_the_rest(demo):
    url, model = demo
    image = get(f"{url}/api/test_image?index=5")["image"]
    mask = [[r < 14] * 28 for r in range(28)]
    status, out = post(f"{url}/api/inpaint", {"image": image, "mask": mask})
    assert status == 200 and out["image"][:14] == [[round(v, 4) for v in row] for row in image[:14]]
    x, known = torch.tensor(image).view(1, -1), torch.tensor(mask).view(1, -1)
    expected = model.net.inpaint(x, known, model.eval_steps).view(28, 28)
    torch.testing.assert_close(torch.tensor(out["image"][14:]), expected[14:].clamp(0, 1), atol=1e-4, rtol=0)


@pytest.mark.parametrize("path, body, message", [
    ("classify", {"image": [[0.0] * 27] * 28}, "image must be 28x28 (this checkpoint's images), got shape [28, 27]"),
    ("classify", {"image": [[2.0] * 28] * 28}, "image values must be grey levels in [0, 1]"),
    ("classify", {"png": "bm90IGEgcG5n"}, "png is not a readable PNG image"),
    ("classify", {}, "give 'image'"),
    ("generate", {"label": 10}, "label must be a class index in 0..9, got 10"),
    ("inpaint", {"image": [[0.0] * 28] * 28}, "give 'mask'"),
    ("load", {"ckpt": "nowhere.ckpt"}, "checkpoint nowhere.ckpt is missing"),
])
def test_bad_input_is_a_clear_message_never_a_traceback(demo, path, body, message):
    url, _ = demo
    status, out = post(f"{url}/api/{path}", body)
    assert status == 400 and message in out["error"] and "Traceback" not in out["error"], out


def test_a_file_that_is_not_an_astdp_checkpoint_is_refused_and_the_model_kept(demo, tmp_path):
    url, _ = demo
    before = get(f"{url}/api/info")
    bad = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, bad)
    status, out = post(f"{url}/api/load", {"ckpt": str(bad)})
    assert status == 400 and "not an astdp checkpoint" in out["error"]
    assert get(f"{url}/api/info") == before


def test_beside_its_params_the_demo_samples_and_inpaints_as_the_runs_stages_do(finished_run, tmp_path):
    """The pipeline's workspace holds params.yaml beside models/: the demo then draws with the
    run's sampler (spikes, drive noise, beta, label strength) and fills as its evaluate stage."""
    from omegaconf import OmegaConf

    from astdp.measure.inpaint import inpainted
    from astdp.stages.generate import chains
    from tests.conftest import copy_run, tiny_config

    folder, data, _ = finished_run
    run = copy_run(folder, tmp_path)
    cfg = tiny_config(data)
    cfg.generate.noise, cfg.evaluate.inpaint_beta = 0.3, 0.8  # not what plain settling does
    OmegaConf.save(cfg, run / "params.yaml")
    demo, plain = Demo(run / "models/last.ckpt", data), Demo(run / "models/last.ckpt", data, params=None)
    assert demo.info()["params"] == str(run / "params.yaml") and plain.info()["params"] is None
    out = demo.generate({"label": 3, "steps": 5, "seed": 7})
    expected = chains(demo.net, torch.tensor([3]), cfg.generate, 7, 5)[:, 0]
    torch.testing.assert_close(torch.tensor(out["frames"]).flatten(1), expected.clamp(0, 1), atol=1e-4, rtol=0)
    assert out == demo.generate({"label": 3, "steps": 5, "seed": 7}) != demo.generate({"label": 3, "steps": 5, "seed": 8})
    image = demo.test_image(5)["image"]
    mask = [[r < 14] * 28 for r in range(28)]
    x, known = torch.tensor(image).view(1, -1), torch.tensor(mask).view(1, -1)
    filled = torch.tensor(demo.inpaint({"image": image, "mask": mask})["image"]).view(1, -1)
    torch.testing.assert_close(filled[~known], inpainted(demo.net, x, known, cfg.evaluate)[~known].clamp(0, 1),
                               atol=1e-4, rtol=0)
    plainly = torch.tensor(plain.inpaint({"image": image, "mask": mask})["image"]).view(1, -1)
    assert (filled[~known] - plainly[~known]).abs().max() > 1e-3  # the run's temperature shows
    (run / "bad.yaml").write_text("generate: {noise: -1}\n")
    with pytest.raises(StageError, match="bad.yaml"):
        Demo(run / "models/last.ckpt", data, params=run / "bad.yaml")


def test_the_command_refuses_a_bad_checkpoint_in_one_line(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    done = subprocess.run([str(Path(sys.executable).parent / "astdp-demo"), "--ckpt", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.strip().count("\n") == 0 and "bad.ckpt is damaged" in done.stderr


@pytest.mark.slow
@needs_chromium
def test_the_page_in_a_real_browser(demo, browser, tmp_path):
    """Pick a test image, classify it, generate a sample, in-paint, and load a bad checkpoint:
    the page shows bars, frames, a fill and the error message."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, model = demo
    wait = WebDriverWait(browser, 30)
    browser.get(url + "/")
    wait.until(lambda b: "from" in b.find_element(By.ID, "info").text)
    browser.find_element(By.ID, "pick").click()
    wait.until(lambda b: b.find_element(By.ID, "index").get_attribute("value") == "1")
    browser.find_element(By.ID, "classify").click()
    bars = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#bars .bar"))
    x = torch.tensor(get(f"{url}/api/test_image?index=0")["image"]).view(1, -1)
    chosen = [b for b in bars if "\u2190" in b.text]
    assert len(bars) == 10 and len(chosen) == 1
    assert chosen[0].get_attribute("data-label") == str(int(model.predict_labels(x)[0]))

    browser.find_element(By.ID, "generate").click()
    wait.until(lambda b: b.find_element(By.ID, "frame").text == "step 8 of 8")
    browser.find_element(By.ID, "inpaint").click()
    lit = "return Array.from(arguments[0].getContext('2d').getImageData(0, 0, 140, 140).data).some(v => v > 0 && v < 255)"
    wait.until(lambda b: b.execute_script(lit, b.find_element(By.ID, "filled")))

    browser.find_element(By.ID, "ckpt").send_keys(str(tmp_path / "nowhere.ckpt"))
    browser.find_element(By.ID, "load").click()
    error = wait.until(lambda b: b.find_element(By.ID, "error").text)
    assert "nowhere.ckpt is missing" in error and "Traceback" not in error
