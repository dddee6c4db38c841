"""The live web view in a real browser (Debian's headless chromium, driven by selenium), on a
real continuum: it lists the nodes, shows a deploy without a reload, and shows a node killed
with ``kill -9`` as lost. A screenshot is kept in ``test-artifacts/``."""

from __future__ import annotations

import json
import shutil
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from _continuum import running

from foglayer.cluster import Creds, NodeSpec, load_manifest
from foglayer.examples import EXAMPLES
from foglayer.web import WebView

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def continuum(tmp_path_factory):
    with running(tmp_path_factory.mktemp("web"), [NodeSpec("cloud", "cloud"),
                                                 NodeSpec("edge", "edge")]) as (c, client):
        with WebView(Creds.load(c.creds("admin"))) as view:
            yield c, client, view


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_view_never_serves_without_its_token(continuum):
    _, _, view = continuum
    base = f"http://127.0.0.1:{view.port}"
    for path in ("/", "/api/state", "/api/stream", "/api/explain/x"):
        assert _get(base + path)[0] == 401
        assert _get(base + path + "?token=wrong-token-of-enough-length")[0] == 401
    assert view.host == "127.0.0.1"
    code, body = _get(f"{base}/api/state?token={view.token}")
    assert code == 200 and {n["name"] for n in json.loads(body)["nodes"]} == {"cloud", "edge"}


def _rows(browser, table: str) -> dict[str, str]:
    # One script reads every row at once: the page re-renders its tables live, so element
    # handles taken one call earlier may already be gone (a stale element under load).
    key = "node" if table == "nodes" else "app"
    return browser.execute_script(
        "const out = {};"
        f"for (const tr of document.querySelectorAll('#{table} tbody tr'))"
        f"  out[tr.dataset.{key}] = tr.dataset.state;"
        "return out;")


def test_the_page_lists_nodes_shows_a_deploy_live_and_a_killed_node_as_lost(continuum, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    c, client, view = continuum
    browser.get(view.url)
    WebDriverWait(browser, 20).until(lambda b: _rows(b, "nodes") == {"cloud": "ready",
                                                                      "edge": "ready"})
    marker = browser.execute_script("window.__noReload = 1; return window.__noReload;")
    assert marker == 1

    man = load_manifest(EXAMPLES / "kvstore.yaml")
    rec = client.deploy(man)
    client.wait(man.name, rec["generation"], 1, 120, states=("running",))
    WebDriverWait(browser, 20).until(lambda b: _rows(b, "apps").get(man.name) == "running")

    c.kill("node-edge", signal.SIGKILL)
    WebDriverWait(browser, 30).until(lambda b: _rows(b, "nodes").get("edge") == "lost")
    assert browser.execute_script("return window.__noReload;") == 1  # the same page, live
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "web-view.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
