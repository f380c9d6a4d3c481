"""The documentation site, opened in a real browser: Debian's Chromium, driven by Selenium.

Builds the site from docs/ (as `make docs` does), serves it on 127.0.0.1, follows every
internal link from the home page (each page must load and each #anchor must exist on it) and
checks that every figure on the results page has loaded.
"""
import http.server
import os
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse
from urllib.request import urlopen

import pytest

from tests.conftest import ROOT, needs_chromium

pytestmark = [pytest.mark.slow, needs_chromium]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site served on a free local port; its base URL."""
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "--quiet", "-d", str(out)],
                           cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode == 0, build.stderr[-2000:]
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_every_internal_link_loads_and_every_results_figure_shows(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    seen, todo, anchors, ids = set(), [site], [], {}
    while todo:
        page = todo.pop()
        if page in seen:
            continue
        seen.add(page)
        assert urlopen(page).status == 200, page  # the browser does not report a 404; the server does
        browser.get(page)
        WebDriverWait(browser, 30).until(lambda b: b.execute_script("return document.readyState") == "complete")
        ids[page] = set(browser.execute_script("return Array.from(document.querySelectorAll('[id]'), e => e.id)"))
        for link in browser.find_elements(By.CSS_SELECTOR, "a[href]"):
            url, fragment = urldefrag(urljoin(page, link.get_attribute("href")))
            if urlparse(url).netloc != urlparse(site).netloc:
                continue  # outside the site
            todo.append(url)
            if fragment:
                anchors.append((page, url, fragment))
    assert len(seen) >= 7, sorted(seen)  # home, results, method, protocol, pipeline, findings, API

    for page, url, fragment in sorted(set(anchors)):
        assert fragment in ids[url], f"{page} links to {url}#{fragment}, which has no such anchor"

    browser.get(urljoin(site, "results/"))
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return document.readyState") == "complete")
    images = browser.find_elements(By.CSS_SELECTOR, "article img")
    assert images, "the results page shows no figure"
    for img in images:
        loaded = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
        assert loaded, f"{img.get_attribute('src')} did not load"
