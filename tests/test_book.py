"""The book (Sphinx + MyST-NB, docs/): a strict build, its links, and what a reader sees in a browser.

The site is built from the committed notebooks with execution off (as ``make book
BOOK_ARGS=--no-execute`` does), with ``-W --keep-going``, once for every book test of a session
(the ``book_site`` fixture of ``tests/conftest.py``): a broken docstring, cross-reference,
citation or theorem label fails the test. Without a browser:

- every internal link and ``#fragment`` resolves (``scripts/check_links.py``, offline);
- the API page documents every name in every labkit module's ``__all__``;
- no page references a script, stylesheet or font outside the site;
- every ``>>>`` example in labkit's docstrings runs as printed (stdlib doctest).

In headless Chromium (``make browser``), with the site served on 127.0.0.1 and once from
``file://``: every page loads with no console error and no request outside 127.0.0.1; every
image decodes; MathJax typesets every formula; every explorer's slider switches its frame and
the first slider changes the figure; the previous/next links chain every page in order; the
offline search for ``empirical_score`` finds the API page; the API page shows
``labkit.scores.empirical_score`` with its docstring. Full-page screenshots go to
``test-artifacts/book/``.

``LABKIT_BOOK_SITE=site`` checks an already built site (e.g. after ``make book``) instead of
building one. Separately, ``scripts/execute_notebooks.py`` is run on a tiny notebook with an
explorer: it must store the widget state and record the runtime.
"""

from __future__ import annotations

import base64
import contextlib
import doctest
import functools
import http.server
import importlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import check_links  # noqa: E402

ARTIFACTS = ROOT / "test-artifacts" / "book"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHROMIUM = next(filter(None, map(shutil.which, ["chromium", "chromium-browser", "google-chrome"])), None)
CHROMEDRIVER = shutil.which("chromedriver")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,900"]
PAGE_TIMEOUT = 60  # seconds for MathJax and the widget manager to finish on a busy 2-core machine

# The reading order: the landing page, the lessons, the reference pages, the course guide.
PAGES = ["index", *(f"notebooks/{path.stem}" for path in NOTEBOOKS),
         "background", "architecture", "paper-scale", "performance", "api", "bibliography",
         "course"]


@pytest.fixture(scope="module")
def site(book_site) -> Path:
    """The book of the committed notebooks, built strictly once per session (tests/conftest.py)."""
    return book_site


def test_the_book_builds_strictly(book_build):
    """``sphinx-build -W``: a broken docstring, cross-reference, citation or label fails here."""
    if book_build.returncode is None:
        pytest.skip("$LABKIT_BOOK_SITE names a site built elsewhere: its build log is not here")
    assert book_build.returncode == 0, f"sphinx-build -W failed:\n{book_build.log}"


def test_every_page_is_built(site):
    missing = [page for page in PAGES if not (site / f"{page}.html").is_file()]
    assert not missing, f"pages not built: {missing}"
    assert (site / "search.html").is_file() and (site / "searchindex.js").is_file()


def test_internal_links_resolve(site):
    broken, _ = check_links.check(site)
    assert not broken, "broken internal links:\n" + "\n".join(broken[:20])


def test_link_checker_finds_a_broken_link(tmp_path):
    """The guard first fails on a site with a missing page and a missing anchor."""
    (tmp_path / "index.html").write_text('<a href="a.html#x">a</a> <a href="gone.html">b</a> <a id="top"></a>')
    (tmp_path / "a.html").write_text('<p id="y">a</p> <a href="index.html#top">back</a>'
                                     ' <a href="https://example.org/">out</a>')
    broken, external = check_links.check(tmp_path)
    assert broken == ["index.html: a.html#x (no id 'x' in a.html)", "index.html: gone.html (no such file)"]
    assert external == ["https://example.org/"]
    (tmp_path / "a.html").write_text('<p id="x">a</p>')
    (tmp_path / "gone.html").write_text("<p>here</p>")
    assert check_links.check(tmp_path)[0] == []


def test_nothing_is_loaded_from_outside_the_site(site):
    """No script, stylesheet, image, font or iframe source points at another host."""
    pattern = re.compile(r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=[\"'](?:https?:)?//", re.I)
    offenders = [str(page.relative_to(site)) for page in site.rglob("*.html")
                 if "_static" not in page.parts and pattern.search(page.read_text(encoding="utf-8"))]
    assert not offenders, f"pages that load from another host: {offenders}"
    css = [str(path.relative_to(site)) for path in (site / "_static").rglob("*.css")
           if re.search(r"@import\s+url\([\"']?https?:|url\([\"']?https?://[^)]*\.(?:woff2?|ttf|otf)",
                        path.read_text(encoding="utf-8", errors="replace"))]
    assert not css, f"stylesheets that fetch fonts or styles from a CDN: {css}"


COMMANDS = {"labkit-sweep": ["sweep"], "labkit-prune": ["prune"], "labkit sweep": ["sweep"],
            "labkit prune": ["prune"], "labkit results run": ["results", "run"], "labkit verify": ["verify"]}


def command_help(words: list[str]) -> str:
    from labkit import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli.main([*words, "--help"])
    return out.getvalue()


def test_paper_scale_page_names_real_options():
    """Every ``--option`` the Paper scale page gives a command is one that command takes."""
    assert "--device" in command_help(["sweep"]) and "--no-such-option" not in command_help(["sweep"])
    page = (ROOT / "docs" / "paper-scale.md").read_text(encoding="utf-8")
    checked, unknown = 0, []
    for line in page.splitlines():
        for prefix, words in sorted(COMMANDS.items(), key=lambda item: -len(item[0])):
            if line.startswith(prefix + " "):
                options = re.findall(r"(?<![\w-])--[a-z][\w-]*", line.split("#")[0])
                text = command_help(words)
                unknown += [f"{prefix} {option}" for option in options if option not in text]
                checked += len(options)
                break
    assert checked >= 8, f"only {checked} options found on the page: has its command syntax changed?"
    assert not unknown, f"options on docs/paper-scale.md that the commands do not take: {unknown}"


# Modules of labkit/ that are not library API (none: the course tooling lives in course/).
NOT_LIBRARY: set[str] = set()


def labkit_modules() -> list[str]:
    """Every public module of the package: ``labkit/*.py`` but ``__init__``, ``_private`` and
    the course tooling's old name."""
    return sorted(path.stem for path in (ROOT / "labkit").glob("*.py")
                  if not path.stem.startswith("_") and path.stem not in NOT_LIBRARY)


def test_api_page_documents_every_public_name(site):
    html = (site / "api.html").read_text(encoding="utf-8")
    missing = []
    for module in labkit_modules():
        if f'id="module-labkit.{module}"' not in html:
            missing.append(f"labkit.{module} (module)")
            continue
        for name in importlib.import_module(f"labkit.{module}").__all__:
            if f'id="labkit.{module}.{name}"' not in html:
                missing.append(f"labkit.{module}.{name}")
    assert not missing, f"names in __all__ that docs/api.md does not document: {missing}"


def run_docstring_examples(module) -> tuple[int, int, str]:
    """(examples tried, failed, the report) of the ``>>>`` examples in ``module``'s docstrings."""
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, module.__name__):
        runner.run(test, out=report.write)
    return runner.tries, runner.failures, report.getvalue()


def test_docstring_examples_are_checked():
    """The guard first: a wrong example fails, a right one passes."""
    module = types.ModuleType("labkit_doctest_demo")
    module.__doc__ = ">>> 1 + 1\n3\n"
    assert run_docstring_examples(module)[:2] == (1, 1)
    module.__doc__ = ">>> 1 + 1\n2\n"
    assert run_docstring_examples(module)[:2] == (1, 0)


@pytest.mark.parametrize("module", labkit_modules())
def test_docstring_examples(module):
    """Every ``>>>`` example in the docstrings (what the API page shows) runs as printed."""
    tries, failures, report = run_docstring_examples(importlib.import_module(f"labkit.{module}"))
    assert failures == 0, f"labkit.{module}: {failures} of {tries} docstring examples failed:\n{report}"


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
    views = [output["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] for cell in code
             for output in cell.outputs if "application/vnd.jupyter.widget-view+json" in output.get("data", {})]
    missing = [view for view in views if view not in widget_state(nb)]
    assert not missing, f"{path.name} shows widgets whose state is not stored (the book cannot replay them)"


def widget_state(nb) -> dict:
    return nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})


def explorers_in(nb) -> int:
    """How many explorers the notebook displays, from its stored widget state."""
    models = widget_state(nb)
    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view and "labkit-explorer" in models.get(view["model_id"], {}).get("state", {}).get("_dom_classes", []):
                count += 1
    return count


DEMO_RENDER = '''\
import matplotlib.pyplot as plt
import numpy as np
import labkit.widgets


def render(t=0.1, n=50):
    fig, ax = plt.subplots(figsize=(4, 3))
    x = np.linspace(-3, 3, 200)
    ax.plot(x, n * np.exp(-x**2 / (2 * t)))
    ax.set(title=f"t = {t}, n = {n}", xlabel="x", ylabel="density")
    return fig'''


def test_execute_notebooks_stores_widget_state_and_runtime(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(DEMO_RENDER),
                nbformat.v4.new_code_cell("import os; print(os.environ.get('LABKIT_FAST', 'full size'))"),
                nbformat.v4.new_code_cell("labkit.widgets.explorer(render, t=[0.01, 0.1], n=[50, 500])")]
    path = tmp_path / "99_demo.ipynb"
    nbformat.write(nb, path)
    env = dict(os.environ, LABKIT_FAST="1")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "execute_notebooks.py"), str(path)],
                            env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["labkit"]["runtime_s"] > 0
    assert nb.cells[1].outputs[0]["text"].strip() == "full size", "the book must show full-size runs"
    assert explorers_in(nb) == 1, "the executed notebook must store its explorer's widget state"


# ---------------------------------------------------------------------------------------------
# In the browser


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def url(site):
    server, address = serve(site)
    yield address
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


# Resolves once MathJax 3 has typeset the page (true), or at once where the page loads no MathJax.
WAIT_MATHJAX = """
const done = arguments[arguments.length - 1];
const start = Date.now();
(function poll() {
  const loads = document.querySelector('script[src*="mathjax/tex-chtml.js"]');
  if (!loads) { done(true); return; }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done(true), () => done(false)); return; }
  if (Date.now() - start > %d) { done(false); return; }
  setTimeout(poll, 100);
})();""" % (PAGE_TIMEOUT * 1000)

PAGE_STATE = """
const shown = el => !el.closest('details:not([open]), .toggle-hidden, [hidden], .dropdown:not(.toggle-shown)');
const visible = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
const textOutside = (root) => {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {acceptNode: node =>
    node.parentElement.closest('code, pre, script, style, mjx-container, .cell_output')
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
  let text = ''; while (walker.nextNode()) text += walker.currentNode.nodeValue; return text;
};
const article = document.querySelector('article.bd-article') || document.body;
return {
  images: Array.from(document.images).map(img => ({src: img.currentSrc.slice(0, 80), complete: img.complete,
                                                   width: img.naturalWidth, visible: !shown(img) || visible(img)})),
  mathSource: document.querySelectorAll('.math').length,
  math: document.querySelectorAll('mjx-container').length,
  mathErrors: document.querySelectorAll('mjx-merror').length,
  prose: textOutside(article),
  explorers: document.querySelectorAll('.labkit-explorer').length,
  pending: Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'))
              .filter(s => !s.parentElement.querySelector('.jupyter-widgets.widget-box, .jupyter-widgets.lm-Widget')).length,
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


def poll(condition, timeout=PAGE_TIMEOUT, interval=0.2):
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > end:
            return value
        time.sleep(interval)


def drain_logs(driver):
    """Console errors, requests that left 127.0.0.1, and failed requests since the last call."""
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    external, failed, urls = set(), [], {}
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message["params"]
        if message["method"] == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
            address = urlparse(params["request"]["url"])
            if address.scheme in ("http", "https", "ws", "wss") and address.hostname != "127.0.0.1":
                external.add(params["request"]["url"])
        elif message["method"] == "Network.loadingFailed" and not params.get("canceled") \
                and params["requestId"] in urls:  # not the browser's own start-up requests
            failed.append(f"{urls[params['requestId']]}: {params.get('errorText')}")
    return errors, sorted(external), failed


def screenshot(driver, name: str, tile: int = 8000, tiles: int = 3) -> None:
    """The page as the reader sees it from the top: ``name.png``, then ``name-2.png`` ... for
    each further ``tile`` pixels (one capture of a very tall page exceeds Chromium's limit),
    at most ``tiles`` of them (the API page runs to tens of thousands of pixels, and encoding
    each tile costs seconds on a busy machine)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    driver.execute_script("window.scrollTo(0, 0)")
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    for k, top in enumerate(range(0, min(math.ceil(size["height"]), tile * tiles), tile)):
        clip = {"x": 0, "y": top, "width": size["width"], "height": min(tile, size["height"] - top), "scale": 1}
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                                 "clip": clip})
        (ARTIFACTS / (f"{name}.png" if k == 0 else f"{name}-{k + 1}.png")).write_bytes(base64.b64decode(shot["data"]))


def load(driver, address: str, name: str, explorers: int = 0) -> dict:
    """Open ``address``; wait for MathJax and the widgets; check images and formulas."""
    driver.get(address)
    assert driver.execute_async_script(WAIT_MATHJAX), f"{name}: MathJax did not finish typesetting"
    state = poll(lambda: (s := driver.execute_script(PAGE_STATE))["pending"] == 0
                 and s["explorers"] >= explorers and all(i["complete"] for i in s["images"]) and s)
    state = state or driver.execute_script(PAGE_STATE)
    assert state["pending"] == 0, f"{name}: {state['pending']} widget view(s) never rendered"
    assert state["explorers"] == explorers, f"{name}: {state['explorers']} explorers shown, {explorers} stored"
    broken = [image for image in state["images"] if not (image["complete"] and image["width"] > 0 and image["visible"])]
    assert not broken, f"{name}: images not decoded or not visible: {broken}"
    if state["mathSource"]:
        assert state["math"] > 0, f"{name}: the page has formulas but MathJax typeset none"
    assert state["mathErrors"] == 0, f"{name}: {state['mathErrors']} formula(s) failed to typeset"
    raw = re.findall(r"\$[^$\s][^$]{0,60}\$|\\\(.{0,60}?\\\)", state["prose"])
    assert not raw, f"{name}: raw LaTeX left in the text: {raw[:5]}"
    return state


def move_sliders(driver, name: str) -> None:
    """Each slider of each explorer switches the frame; the first one changes the figure."""
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


def assert_clean(driver, name: str) -> None:
    errors, external, failed = drain_logs(driver)
    assert not errors, f"{name}: console errors: {errors}"
    assert not external, f"{name}: the page reached outside 127.0.0.1 (the book must work offline): {external}"
    assert not failed, f"{name}: requests failed: {failed}"


def expected_explorers(page: str) -> int:
    if page.startswith("notebooks/"):
        return explorers_in(nbformat.read(ROOT / f"{page}.ipynb", as_version=4))
    return 0


def test_the_committed_notebooks_have_explorers():
    """The slider checks below need at least one stored explorer to mean anything."""
    assert sum(explorers_in(nbformat.read(path, as_version=4)) for path in NOTEBOOKS) > 0


@pytest.mark.parametrize("page", PAGES)
def test_page_in_the_browser(browser, url, page):
    name = page.replace("/", "_")
    drain_logs(browser)
    load(browser, f"{url}/{page}.html", name, expected_explorers(page))
    move_sliders(browser, name)
    screenshot(browser, name)
    assert_clean(browser, name)


def test_a_notebook_page_works_from_file_urls(browser, site):
    """Opened straight from disk (``file://``): formulas, widgets and sliders still work."""
    page = max((p for p in PAGES if p.startswith("notebooks/")), key=expected_explorers, default=None)
    if page is None:
        pytest.skip("no notebook pages")
    drain_logs(browser)
    load(browser, (site / f"{page}.html").as_uri(), f"file-{page}", expected_explorers(page))
    move_sliders(browser, f"file-{page}")
    assert_clean(browser, f"file-{page}")


# Follows one kind of link (`a.right-next` or `a.left-prev`) from page to page, as the browser
# fetches and parses each page, without rendering it (a rendered walk takes minutes on a busy
# 2-core machine); returns the URLs visited.
WALK = """
const [start, selector, limit, done] = arguments;
(async () => {
  const seen = []; let address = start;
  while (address && seen.length <= limit) {
    seen.push(address);
    const html = await (await fetch(address)).text();
    const link = new DOMParser().parseFromString(html, 'text/html').querySelector(selector);
    address = link ? new URL(link.getAttribute('href'), address).href : null;
  }
  done(seen);
})();"""


def test_previous_and_next_links_chain_every_page_in_order(browser, url):
    from selenium.webdriver.common.by import By

    def walk(start: str, selector: str) -> list[str]:
        visited = browser.execute_async_script(WALK, f"{url}/{start}.html", selector, len(PAGES))
        return [urlparse(address).path.lstrip("/").removesuffix(".html") for address in visited]

    browser.get(f"{url}/{PAGES[-1]}.html")
    assert walk(PAGES[0], "a.right-next") == PAGES
    assert walk(PAGES[-1], "a.left-prev") == PAGES[::-1]
    # and a reader's click on the landing page's "next" link opens the first lesson
    browser.get(f"{url}/{PAGES[0]}.html")
    browser.find_element(By.CSS_SELECTOR, "a.right-next").click()
    assert poll(lambda: urlparse(browser.current_url).path == f"/{PAGES[1]}.html", timeout=30), browser.current_url
    drain_logs(browser)


def test_offline_search_finds_the_api_page(browser, url):
    from selenium.webdriver.common.by import By

    drain_logs(browser)
    browser.get(f"{url}/search.html?q=empirical_score")
    hits = poll(lambda: [a.get_attribute("href") for a in
                         browser.find_elements(By.CSS_SELECTOR, "#search-results li a")] or None)
    assert hits, "the search page listed no result for empirical_score"
    assert any(urlparse(hit).path.endswith("/api.html") for hit in hits), hits
    screenshot(browser, "search")
    assert_clean(browser, "search")


def test_api_page_shows_empirical_score_with_its_docstring(browser, url):
    from selenium.webdriver.common.by import By

    from labkit import scores

    browser.get(f"{url}/api.html#labkit.scores.empirical_score")
    signature = browser.find_element(By.ID, "labkit.scores.empirical_score")
    assert "empirical_score" in signature.text and "train" in signature.text
    body = signature.find_element(By.XPATH, "following-sibling::dd[1]").text
    first_line = scores.empirical_score.__doc__.strip().splitlines()[0]
    words = re.sub(r"[`*]", "", first_line).split()[:6]
    assert " ".join(words) in " ".join(body.split()), (words, body[:300])
    drain_logs(browser)
