"""``astdp-demo``: try a trained checkpoint in the browser, or call it from a script.

A page on 127.0.0.1 (draw a digit or pick a test image and see the label units' activities;
pick a class and watch a sample settle step by step; hide half of a test image and see it
in-painted) over three JSON endpoints a script can call too:

- ``POST /api/classify`` ``{"image": 28x28 grey values in [0, 1]}`` or ``{"png": base64}``
  -> ``{"activities": [...], "label": k}``
- ``POST /api/generate`` ``{"label": k}`` -> ``{"image": ..., "frames": [one image per settling step]}``
- ``POST /api/inpaint`` ``{"image": ..., "mask": same shape, true where the pixel is known}``
  -> ``{"image": ...}``

Where the run's ``params.yaml`` sits beside its ``models/`` folder (the pipeline's workspace, a DVC
experiment, a run folder), the demo samples and in-paints as that run's generate and evaluate
stages do (``--params`` names another; ``--params ''`` settles plainly, at the temperature it
trained at): the pictures on the page are the results' pictures.

``POST /api/load`` ``{"ckpt": path}`` swaps the checkpoint (read by the stages' safe loader);
``GET /api/test_image?index=n`` gives a test image when ``--data`` names the dataset. Bad
input is a 400 whose ``error`` says what is wrong; the page shows it. Plain standard library:
no web framework to install.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import astdp.stages  # noqa: F401  pins the CPU kernels as the stages do, before torch runs any
import torch

from astdp.errors import StageError

PAGE = Path(__file__).with_name("demo.html")


class DemoError(ValueError):
    """Input the demo cannot use: the message says what is wrong."""


class Demo:
    """A trained aSTDP checkpoint behind the three calls (plain data in, plain data out)."""

    def __init__(self, ckpt: str | Path, data: str | Path | None = None, params: str | Path | None = "beside") -> None:
        self.lock = threading.Lock()  # one request at a time touches the model
        self.data, self._test = data, None
        self.load(ckpt, params)

    def load(self, ckpt: str | Path, params: str | Path | None = "beside") -> None:
        """Load ``ckpt``, and the generate and evaluate settings of ``params`` (a run's params.yaml;
        ``"beside"``: the one beside the checkpoint's ``models/`` folder, if there is one; None: none)."""
        from astdp.training.checkpoints import load_model

        module = load_model(ckpt, torch.device("cpu"))  # a StageError names a bad file
        if not hasattr(module, "net"):
            raise StageError(f"checkpoint {ckpt} is a backprop baseline: it classifies but does not "
                             "generate; load an aSTDP checkpoint")
        if params == "beside":
            beside = Path(ckpt).resolve().parent.parent / "params.yaml"
            params = beside if beside.is_file() else None
        stages = run_settings(params) if params else None
        with self.lock:
            self.module, self.net, self.ckpt = module, module.net, str(ckpt)
            self.steps = module.eval_steps
            self.params, self.stages = (str(params) if params else None), stages

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.net.image_shape)

    def info(self) -> dict:
        return {"ckpt": self.ckpt, "network": type(self.net).__name__, "hidden": self.net.sizes[1:],
                "image_shape": list(self.shape), "classes": self.net.n_labels, "test_images": self.data is not None,
                "params": self.params}

    # ------------------------------------------------------------------ input
    def image(self, request: dict, key: str = "image") -> torch.Tensor:
        """One image as a (1, pixels) float tensor, from a nested list or a base64 PNG."""
        h, w = self.shape
        if key == "image" and "png" in request:
            from PIL import Image

            try:
                picture = Image.open(io.BytesIO(base64.b64decode(request["png"]))).convert("L")
            except Exception as e:
                raise DemoError(f"png is not a readable PNG image ({type(e).__name__})") from None
            if picture.size != (w, h):
                picture = picture.resize((w, h), Image.BILINEAR)
            return torch.frombuffer(bytearray(picture.tobytes()), dtype=torch.uint8).float().div(255).view(1, -1)
        if key not in request:
            raise DemoError(f"give {key!r}: a {h}x{w} list of grey values in [0, 1]"
                            + (" (or 'png': a base64 PNG)" if key == "image" else ""))
        try:
            x = torch.tensor(request[key], dtype=torch.float32)
        except (TypeError, ValueError):
            raise DemoError(f"{key} must be a {h}x{w} list of numbers") from None
        if tuple(x.shape) != (h, w):
            raise DemoError(f"{key} must be {h}x{w} (this checkpoint's images), got shape {list(x.shape)}")
        if key == "image" and not (torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
            raise DemoError("image values must be grey levels in [0, 1]")
        return x.view(1, -1)

    def label(self, request: dict) -> int:
        k = request.get("label")
        if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < self.net.n_labels:
            raise DemoError(f"label must be a class index in 0..{self.net.n_labels - 1}, got {k!r}")
        return k

    def as_image(self, x: torch.Tensor) -> list[list[float]]:
        return [[round(v, 4) for v in row] for row in x.view(self.shape).clamp(0, 1).tolist()]

    # ------------------------------------------------------------------ the three calls
    @torch.no_grad()
    def classify(self, request: dict) -> dict:
        x = self.image(request)
        with self.lock:
            activities = self.net.label_activity(x, self.steps)[0]
        return {"activities": [round(a, 5) for a in activities.tolist()], "label": int(activities.argmax())}

    @torch.no_grad()
    def generate(self, request: dict) -> dict:
        """A sample of class ``label`` after 1..``steps`` settling steps: with the run's sampler,
        each frame reruns the chain from ``seed``, so it is the same chain one step further."""
        from astdp.stages.generate import chains

        k = self.label(request)
        steps, seed = request.get("steps", 8), request.get("seed", 0)
        if not isinstance(steps, int) or not 1 <= steps <= 50:
            raise DemoError(f"steps must be an integer in 1..50, got {steps!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise DemoError(f"seed must be an integer, got {seed!r}")
        labels = torch.tensor([k])
        with self.lock:
            if self.stages is None:  # plain settling is deterministic: k steps is the chain's k-th frame
                frames = [self.net.generate(labels, n) for n in range(1, steps + 1)]
            else:
                frames = list(chains(self.net, labels, self.stages.generate, seed, steps))
        return {"image": self.as_image(frames[-1]), "frames": [self.as_image(f) for f in frames]}

    @torch.no_grad()
    def inpaint(self, request: dict) -> dict:
        from astdp.measure.inpaint import inpainted

        x = self.image(request)
        known = self.image(request, "mask").bool()
        with self.lock:
            if self.stages is None:
                filled = self.net.inpaint(x, known, self.steps)
            else:  # as the evaluate stage fills
                filled = inpainted(self.net, x, known, self.stages.evaluate)
        return {"image": self.as_image(torch.where(known, x, filled))}

    def test_image(self, index: int) -> dict:
        if self.data is None:
            raise DemoError("no test images: start astdp-demo with --data DIR (e.g. data/mnist)")
        if self._test is None:
            from astdp.data.idx import load_split

            try:
                self._test = load_split(self.data, "test", {}, self.shape, self.net.n_labels, verify=False)
            except Exception as e:
                raise DemoError(f"cannot read the test images in {self.data}: {e}") from None
        images, labels = self._test
        index %= len(images)
        return {"image": self.as_image(images[index]), "label": int(labels[index]), "index": index}


def run_settings(params: str | Path):
    """The generate and evaluate sections of a run's ``params.yaml``, checked as the stages check
    theirs (a StageError names a missing or unreadable file, or a bad value)."""
    from omegaconf import OmegaConf

    from astdp.config import sections

    path = Path(params)
    if not path.is_file():
        raise StageError(f"params file {path} is missing; give a run's params.yaml (--params) or --params ''")
    try:
        return sections(OmegaConf.load(path), ["generate", "evaluate"])
    except Exception as e:
        raise StageError(f"cannot use {path} as a run's params.yaml ({type(e).__name__}: {e}); "
                         "give another (--params) or --params ''") from None


class Handler(BaseHTTPRequestHandler):
    demo: Demo

    def log_message(self, *args) -> None:  # quiet: the page is the interface
        pass

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: dict) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/":
            return self._send(200, PAGE.read_bytes(), "text/html; charset=utf-8")
        if url.path == "/api/info":
            return self._json(200, self.demo.info())
        if url.path == "/api/test_image":
            try:
                return self._json(200, self.demo.test_image(int(parse_qs(url.query).get("index", ["0"])[0])))
            except (DemoError, ValueError) as e:
                return self._json(400, {"error": str(e)})
        self._json(404, {"error": f"no such page {url.path}"})

    def do_POST(self) -> None:
        calls = {"/api/classify": self.demo.classify, "/api/generate": self.demo.generate,
                 "/api/inpaint": self.demo.inpaint, "/api/load": self._load}
        call = calls.get(urlparse(self.path).path)
        if call is None:
            return self._json(404, {"error": f"no such endpoint {self.path}; try {', '.join(calls)}"})
        try:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if not isinstance(request, dict):
                raise DemoError("send a JSON object")
            self._json(200, call(request))
        except json.JSONDecodeError:
            self._json(400, {"error": "the request body is not JSON"})
        except (DemoError, StageError) as e:
            self._json(400, {"error": " ".join(str(e).split())})

    def _load(self, request: dict) -> dict:
        if not isinstance(request.get("ckpt"), str):
            raise DemoError("give 'ckpt': the path of a checkpoint")
        self.demo.load(request["ckpt"])
        return self.demo.info()


def serve(demo: Demo, port: int = 7860, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A server for ``demo`` (``port`` 0: any free port); call ``serve_forever`` on it."""
    handler = type("DemoHandler", (Handler,), {"demo": demo})
    return ThreadingHTTPServer((host, port), handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="astdp-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", default="models/last.ckpt", help="an aSTDP checkpoint (default: the pipeline's)")
    parser.add_argument("--data", default="data/mnist", help="the dataset's folder, for test images ('' for none)")
    parser.add_argument("--params", default="beside",
                        help="the run's params.yaml, whose sampler and in-painting the demo uses (default: the one "
                             "beside the checkpoint's models/ folder, if any; '' for plain settling)")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)
    try:
        demo = Demo(args.ckpt, args.data if args.data and Path(args.data).is_dir() else None, args.params or None)
    except StageError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(1)
    server = serve(demo, args.port)
    print(f"astdp demo of {args.ckpt} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
