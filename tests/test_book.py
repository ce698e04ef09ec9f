"""Browser test of the HTML book: what a reader with no kernel and no network would see.

The book is rendered from the committed notebooks (``build_book.py --no-execute``) into a
temporary folder, served on 127.0.0.1 from a thread, and opened in headless Chromium. A small
demo notebook with an explorer is also executed and rendered, so the kernel-free slider
mechanism is checked even when no committed notebook has an explorer yet. On every page:

- it loads with no console error and requests nothing outside 127.0.0.1 (the book is offline);
- every image is decoded and visible (``naturalWidth > 0``, non-empty box);
- formulas are typeset: MathJax output is present, no MathJax error, no raw ``$...$`` left;
- every explorer renders, and moving its first slider changes the pixels of the displayed
  figure (each further slider must switch to another frame).

A full-page screenshot of each page goes to ``test-artifacts/book/``. Needs ``chromium`` and
``chromedriver`` (``make browser`` installs them and selenium); skipped with a message where
they are missing. Without a browser, one check still runs: each committed notebook is executed
top to bottom with its widget state stored, i.e. it is what ``make book`` produces.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "scripts" / "build_book.py"
ARTIFACTS = ROOT / "test-artifacts" / "book"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHROMIUM = next(filter(None, map(shutil.which, ["chromium", "chromium-browser", "google-chrome"])), None)
CHROMEDRIVER = shutil.which("chromedriver")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,900"]
PAGE_TIMEOUT = 60  # seconds for MathJax and the widget manager to finish on a busy 2-core machine

DEMO_RENDER = '''\
import matplotlib.pyplot as plt
import numpy as np
import labkit.plotting
import labkit.widgets

cfg = labkit.plotting.setup()


def render(t=0.1, n=50):
    fig, ax = plt.subplots(figsize=(5, 3))
    x = np.linspace(-3, 3, 200)
    ax.plot(x, n * np.exp(-x**2 / (2 * t)))
    ax.set(title=f"t = {t}, n = {n}", xlabel="x", ylabel="density")
    return fig'''


def write_demo(folder: Path) -> Path:
    """A tiny lesson with inline and display math, a saved figure shown from markdown, and a
    two-slider explorer."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# 99 Demo: an explorer without a kernel\n\nThe OU process "
            "$X_t = \\alpha_t X_0 + \\sigma_t Z$ with $\\alpha_t = e^{-t/2}$ and\n\n"
            "$$\\sigma_t^2 = 1 - e^{-t}.$$"),
        nbformat.v4.new_code_cell(DEMO_RENDER),
        nbformat.v4.new_code_cell('labkit.plotting.savefig(render(), "99_demo")'),
        nbformat.v4.new_code_cell("labkit.widgets.explorer(render, t=[0.01, 0.1, 1.0], n=[50, 500])"),
        nbformat.v4.new_markdown_cell("![the saved figure](../figures/99_demo.png)"),
    ]
    path = folder / "notebooks" / "99_demo.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


def build(out: Path, notebooks: list[Path], execute: bool, figures: Path | None = None) -> None:
    env = {key: value for key, value in os.environ.items() if key != "LABKIT_FAST"}
    if figures is not None:
        env["LABKIT_FIGURES"] = str(figures)
    command = [sys.executable, str(BUILD), "--out", str(out), *map(str, notebooks)]
    if not execute:
        command.insert(2, "--no-execute")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"build_book failed:\n{result.stdout}\n{result.stderr}"
    assert (out / "index.html").is_file()


def explorers_in(nb) -> int:
    """How many explorers the notebook displays, from its stored widget state."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    models = state.get("state", {})
    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view and "labkit-explorer" in models.get(view["model_id"], {}).get("state", {}).get("_dom_classes", []):
                count += 1
    return count


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    """URLs of the book of the committed notebooks (None if there are none) and of the demo book."""
    tmp = tmp_path_factory.mktemp("book")
    servers = []
    urls = {"book": None}
    if NOTEBOOKS:
        # The committed figures, not those a concurrent test run writes under $LABKIT_FIGURES.
        build(tmp / "site", NOTEBOOKS, execute=False, figures=ROOT / "figures")
        servers.append(serve(tmp / "site"))
        urls["book"] = servers[-1][1]
    demo = write_demo(tmp / "demo")
    build(tmp / "demo" / "site", [demo], execute=True, figures=tmp / "demo" / "figures")
    servers.append(serve(tmp / "demo" / "site"))
    urls.update(demo=servers[-1][1], demo_notebook=demo)
    yield urls
    for server, _ in servers:
        server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("browser test skipped: no chromium/chromedriver on PATH (run `make browser` as root "
                    "on Debian/Ubuntu to install them)")
    pytest.importorskip("selenium", reason="browser test skipped: selenium is not installed (run `make browser`)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never fetch a driver or browser
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(PAGE_TIMEOUT)
    yield driver
    driver.quit()


# Resolves once MathJax has typeset everything queued so far (the page queues its typeset on load).
WAIT_MATHJAX = """
const done = arguments[arguments.length - 1];
const start = Date.now();
(function poll() {
  if (window.MathJax && MathJax.Hub && MathJax.isReady) { MathJax.Hub.Queue(() => done(true)); return; }
  if (Date.now() - start > %d) { done(false); return; }
  setTimeout(poll, 100);
})();""" % (PAGE_TIMEOUT * 1000)

PAGE_STATE = """
const visible = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
const textOutside = (root) => {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {acceptNode: node =>
    node.parentElement.closest('code, pre, script, style, .MathJax_Preview') ? NodeFilter.FILTER_REJECT
                                                                           : NodeFilter.FILTER_ACCEPT});
  let text = ''; while (walker.nextNode()) text += walker.currentNode.nodeValue; return text;
};
return {
  images: Array.from(document.images).map(img => ({src: img.currentSrc.slice(0, 80), complete: img.complete,
                                                   width: img.naturalWidth, visible: visible(img)})),
  math: document.querySelectorAll('.MathJax_CHTML, .mjx-chtml').length,
  mathErrors: document.querySelectorAll('.mjx-merror, .MathJax_Error, .mjx-noError, .noError').length,
  prose: Array.from(document.querySelectorAll('.jp-RenderedMarkdown, main.labkit-index, .labkit-index main'))
              .map(textOutside).join('\\n'),
  explorers: document.querySelectorAll('.labkit-explorer').length,
  pending: Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'))
              .filter(s => !s.parentElement.querySelector('.jupyter-widgets.widget-box, .jupyter-widgets.lm-Widget')).length,
  height: document.documentElement.scrollHeight,
};"""

# A hash of the pixels of the one visible frame of an explorer (decoded from its blob URL).
FRAME = """
const box = arguments[0];
const shown = Array.from(box.querySelectorAll('img.widget-image'))
  .filter(img => { const r = img.getBoundingClientRect(); return r.width > 0 && r.height > 0; });
if (shown.length !== 1 || !shown[0].complete || shown[0].naturalWidth === 0) return {count: shown.length};
const img = shown[0], canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const ctx = canvas.getContext('2d'); ctx.drawImage(img, 0, 0);
const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
let hash = 0; for (let k = 0; k < data.length; k += 3) hash = (Math.imul(hash, 31) + data[k]) >>> 0;
return {count: 1, src: img.src, hash: hash, width: img.naturalWidth};"""


def has_math(nb_or_html: str) -> bool:
    return re.search(r"\$[^$\s][^$]*\$", nb_or_html) is not None


def poll(condition, timeout=PAGE_TIMEOUT, interval=0.2):
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > end:
            return value
        time.sleep(interval)


def drain_logs(driver):
    """Console errors and requests that left 127.0.0.1 since the last call."""
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    external, failed, urls = set(), [], {}
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message["params"]
        if message["method"] == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
            url = urlparse(params["request"]["url"])
            if url.scheme in ("http", "https", "ws", "wss") and url.hostname != "127.0.0.1":
                external.add(params["request"]["url"])
        elif message["method"] == "Network.loadingFailed" and not params.get("canceled") \
                and params["requestId"] in urls:  # not the browser's own start-up requests
            failed.append(f"{urls[params['requestId']]}: {params.get('errorText')}")
    return errors, sorted(external), failed


def screenshot(driver, name: str, tile: int = 8000) -> None:
    """The whole page as the reader sees it from the top: ``name.png``, then ``name-2.png`` ...
    for each further ``tile`` pixels (one capture of a very tall page exceeds Chromium's limit)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    driver.execute_script("window.scrollTo(0, 0)")
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    for k, top in enumerate(range(0, math.ceil(size["height"]), tile)):
        clip = {"x": 0, "y": top, "width": size["width"], "height": min(tile, size["height"] - top), "scale": 1}
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                                 "clip": clip})
        (ARTIFACTS / (f"{name}.png" if k == 0 else f"{name}-{k + 1}.png")).write_bytes(base64.b64decode(shot["data"]))


def check_page(driver, url: str, name: str, explorers: int, math: bool) -> None:
    drain_logs(driver)
    driver.get(url)
    assert driver.execute_async_script(WAIT_MATHJAX), f"{name}: MathJax did not finish typesetting"
    state = poll(lambda: (s := driver.execute_script(PAGE_STATE))["pending"] == 0
                 and s["explorers"] >= explorers and all(i["complete"] for i in s["images"]) and s)
    state = state or driver.execute_script(PAGE_STATE)
    assert state["pending"] == 0, f"{name}: {state['pending']} widget view(s) never rendered"
    assert state["explorers"] == explorers, f"{name}: {state['explorers']} explorers shown, {explorers} stored"

    broken = [image for image in state["images"] if not (image["complete"] and image["width"] > 0 and image["visible"])]
    assert not broken, f"{name}: images not decoded or not visible: {broken}"
    if math:
        assert state["math"] > 0, f"{name}: the page has formulas but MathJax typeset none"
    assert state["mathErrors"] == 0, f"{name}: {state['mathErrors']} formula(s) failed to typeset"
    raw = re.findall(r"\$[^$\s][^$]{0,60}\$", state["prose"])
    assert not raw, f"{name}: raw LaTeX left in the text: {raw[:5]}"

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    for k, box in enumerate(driver.find_elements(By.CSS_SELECTOR, ".labkit-explorer")):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
        for s, handle in enumerate(box.find_elements(By.CSS_SELECTOR, ".noUi-handle")):
            before = driver.execute_script(FRAME, box)
            assert before["count"] == 1, f"{name}: explorer {k} shows {before['count']} frames at once"
            at_end = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
            handle.send_keys(Keys.ARROW_LEFT if at_end else Keys.ARROW_RIGHT)
            after = poll(lambda: (f := driver.execute_script(FRAME, box)).get("src") not in (None, before["src"])
                         and f, timeout=10) or driver.execute_script(FRAME, box)
            assert after.get("src") != before["src"], f"{name}: explorer {k} slider {s} did not switch frames"
            if s == 0:
                assert after.get("hash") != before["hash"], f"{name}: explorer {k}: the figure did not change"

    screenshot(driver, name)
    errors, external, failed = drain_logs(driver)
    assert not errors, f"{name}: console errors: {errors}"
    assert not external, f"{name}: the page reached outside 127.0.0.1 (the book must work offline): {external}"
    assert not failed, f"{name}: requests failed: {failed}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_page(browser, books, path):
    nb = nbformat.read(path, as_version=4)
    markdown = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    check_page(browser, f"{books['book']}/{path.stem}.html", path.stem, explorers_in(nb), has_math(markdown))


def test_index_page(browser, books):
    url = books["book"] or books["demo"]
    check_page(browser, f"{url}/index.html", "index", explorers=0, math=True)
    links = [a.get_attribute("href") for a in browser.find_elements("css selector", "a.labkit-card")]
    stems = [path.stem for path in NOTEBOOKS] if books["book"] else ["99_demo"]
    assert [urlparse(link).path.rsplit("/", 1)[-1] for link in links] == [f"{stem}.html" for stem in stems]
    if books["book"]:  # a notebook that saved figures gets one on its card
        with_figure = [bool(card.find_elements("css selector", "img"))
                       for card in browser.find_elements("css selector", "a.labkit-card")]
        assert with_figure == [any((ROOT / "figures").glob(f"{stem[:2]}_*.png")) for stem in stems]


def test_demo_explorer_works_without_a_kernel(browser, books):
    nb = nbformat.read(books["demo_notebook"], as_version=4)
    assert explorers_in(nb) == 1, "the executed demo must store its explorer's widget state"
    assert nb.metadata["labkit"]["runtime_s"] > 0
    check_page(browser, f"{books['demo']}/99_demo.html", "99_demo", explorers=1, math=True)
    cards = browser.find_elements("css selector", ".labkit-nav a")
    assert [a.text for a in cards] == ["labkit book"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_committed_notebook_is_what_the_book_shows(path):
    """Executed top to bottom (counts 1..N), no error output, widget state for every widget shown."""
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code" and cell.source.strip()]
    counts = [cell.get("execution_count") for cell in code]
    assert counts == list(range(1, len(code) + 1)), \
        f"{path.name} is not executed top to bottom in one fresh kernel (execution counts {counts}): run `make book`"
    errors = [output.get("ename") for cell in code for output in cell.outputs if output.output_type == "error"]
    assert not errors, f"{path.name} has error outputs: {errors}"
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    views = [output["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] for cell in code
             for output in cell.outputs if "application/vnd.jupyter.widget-view+json" in output.get("data", {})]
    missing = [view for view in views if view not in state]
    assert not missing, f"{path.name} shows widgets whose state is not stored (the book cannot replay them)"
