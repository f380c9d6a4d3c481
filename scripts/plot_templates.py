"""Write what `dvc plots show` needs to draw our plots offline and readably (run by `make plots`):

- ``.dvc/plots/confusion_errors.json``: DVC's own confusion template with the diagonal left out,
  so the colour scale shows the errors instead of the correct predictions;
- ``.dvc/plots-page.html``: DVC's page with the Vega, Vega-Lite and Vega-Embed libraries inlined
  (vl-convert ships them), where DVC's own page loads them from a CDN and stays blank offline.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from dvc_render.html import PAGE_HTML
from dvc_render.vega_templates import ConfusionTemplate


def confusion_errors() -> dict:
    spec = json.loads(json.dumps(ConfusionTemplate.DEFAULT_CONTENT))
    spec["spec"]["transform"].insert(0, {"filter": "datum.actual != datum.predicted"})
    return spec


def offline_page() -> str:
    import vl_convert

    # DVC writes Vega-Lite 5 specs: the newest 5.x that vl-convert ships draws them without a warning
    version = max((v for v in vl_convert.get_vegalite_versions() if v.startswith("5.")), key=lambda v: int(v.split(".")[1]))
    bundle = vl_convert.javascript_bundle(vl_version=version).replace("</script", "<\\/script")
    return PAGE_HTML.replace("{scripts}", f"<script>{bundle}</script>")


def main(dvc_dir: Path = Path(".dvc")) -> None:
    (dvc_dir / "plots").mkdir(exist_ok=True)
    (dvc_dir / "plots" / "confusion_errors.json").write_text(json.dumps(confusion_errors(), indent=2) + "\n")
    (dvc_dir / "plots-page.html").write_text(offline_page())


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:]))
