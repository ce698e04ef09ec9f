"""The book fits a laptop: nothing on any page scrolls sideways at 1366 x 900.

Two checks, one on the sources and one in the browser.

- The notebooks' code cells are what ``make format`` makes of them (Black at 88 columns,
  comments wrapped), no line of any code cell is longer than 88 characters, and no printed
  output line is either: ``scripts/format_notebooks.py --check`` names each notebook and cell
  that is not.
- Every page of the built book (the ``book_site`` fixture of ``tests/conftest.py``, or
  ``$LABKIT_BOOK_SITE``) is opened in headless Chromium at 1366 x 900, with every fold opened
  (hidden drawing code, solutions), once MathJax has typeset it. A code cell, a cell output,
  a display equation (MathJax container) or a table fails the test when it, or the nearest
  ancestor that scrolls or clips it, is wider than its box (``scrollWidth > clientWidth + 1``),
  or when it sticks out of the text column; the page fails when the whole document scrolls
  sideways. The message names the page, the kind of element and its first characters.
  The highlighted module sources (``_modules/``) are left out: labkit's own code is written
  at 100 columns, and those pages are a reference, not part of the reading.

``LABKIT_SCREENS=1`` also saves screenshots of each page, one 1366 x 900 viewport per file from
the top down, folds closed, to ``test-artifacts/screens/``.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import sys
import threading
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import format_notebooks  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SCREENS = ROOT / "test-artifacts" / "screens"
CHROMIUM = next(filter(None, map(shutil.which, ["chromium", "chromium-browser", "google-chrome"])), None)
CHROMEDRIVER = shutil.which("chromedriver")
WIDTH, HEIGHT = 1366, 900
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--window-size={WIDTH},{HEIGHT}", "--hide-scrollbars"]
TIMEOUT = 60  # seconds for MathJax and the widgets on a busy 2-core machine

PAGES = ["index.html", *(f"notebooks/{path.stem}.html" for path in NOTEBOOKS), "background.html",
         "architecture.html", "paper-scale.html", "performance.html", "api.html",
         "bibliography.html", "course.html", "genindex.html",
         "py-modindex.html", "prf-prf.html", "search.html?q=empirical_score"]


# ---------------------------------------------------------------------------------------------
# The sources


def notebook(tmp_path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A title"), nbformat.v4.new_code_cell(source.rstrip("\n"))]
    path = tmp_path / "99_demo.ipynb"
    nbformat.write(nb, path)
    return path


def test_format_check_names_the_cells_that_do_not_fit(tmp_path):
    """The guard first: unformatted code, a long comment and an unsplittable line fail, by cell."""
    path = notebook(tmp_path, "x = {'a':1}\n")
    assert format_notebooks.problems([path]) == [f"{path}: cell 2: not formatted (run `make format`)"]
    path = notebook(tmp_path, "# " + " ".join(["word"] * 20) + "\nx = 1\n")
    assert format_notebooks.problems([path]) == [f"{path}: cell 2: not formatted (run `make format`)",
                                                 f"{path}: cell 2: line 1 has 101 characters (> 88)"]
    key = " ".join(["a dictionary key that no formatter splits"] * 2)
    path = notebook(tmp_path, f'x = {{\n    "{key}": (\n        1\n    ),\n}}\n')
    assert format_notebooks.problems([path]) == [f"{path}: cell 2: line 2 has 92 characters (> 88)"]
    path = notebook(tmp_path, 'x = {"a": 1}\nprint(x)\n')
    assert format_notebooks.problems([path]) == []


def test_format_wraps_comments_and_moves_long_trailing_comments(tmp_path):
    long = "a comment that explains the line " * 3
    path = notebook(tmp_path, f"# {long}\nx = [1, 2, 3]  # {long}\nif x:\n    y = 2  # short\n")
    format_notebooks.format_notebooks([path])
    source = nbformat.read(path, as_version=4).cells[1].source
    assert max(map(len, source.splitlines())) <= 88
    assert source.count("x = [1, 2, 3]\n") == 1 and "y = 2  # short" in source
    assert " ".join(source.replace("#", " ").split()).count(long.strip()) == 2, source
    assert format_notebooks.problems([path]) == []


def test_notebook_code_fits_88_columns():
    """Every code cell of every notebook is formatted and no line is over 88 characters."""
    found = format_notebooks.problems(NOTEBOOKS)
    assert not found, ("notebook code that does not fit 88 columns (run `make format`, then split "
                       "long strings by hand):\n" + "\n".join(found))


def test_output_check_names_printed_lines_that_do_not_fit(tmp_path):
    """The guard first: a long printed line is named; a figure's or a widget's text is not."""
    path = notebook(tmp_path, "print('x' * 100)")
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 100 + "\nshort\n"),
                           nbformat.v4.new_output("display_data", data={"text/plain": "y" * 200,
                                                                        "image/png": ""})]
    nbformat.write(nb, path)
    assert format_notebooks.long_outputs([path]) == [
        f"{path}: cell 2: output line 1 has 100 characters (> 88)"]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 88)]
    nbformat.write(nb, path)
    assert format_notebooks.long_outputs([path]) == []


def test_notebook_outputs_fit_88_columns():
    """No printed line of any notebook is over 88 characters (the book's text column)."""
    found = format_notebooks.long_outputs(NOTEBOOKS)
    assert not found, ("printed lines that do not fit 88 columns (change what the cell prints, "
                       "or display a table as Markdown, and run the notebook):\n" + "\n".join(found))


# ---------------------------------------------------------------------------------------------
# In the browser


@pytest.fixture(scope="module")
def url(book_site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(book_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("layout test skipped: no chromium/chromedriver on PATH (run `make browser`)")
    pytest.importorskip("selenium", reason="layout test skipped: selenium is not installed (run `make browser`)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-layout')}")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never fetch a driver or browser
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(TIMEOUT)
    # The window's outer size includes no chrome in headless mode; set the viewport exactly.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    yield driver
    driver.quit()


# Resolves once MathJax has typeset the page, the widgets have rendered and search has listed.
READY = """
const done = arguments[arguments.length - 1], start = Date.now();
(function poll() {
  const mathjax = document.querySelector('script[src*="mathjax/"]');
  const typeset = !mathjax || (window.MathJax && MathJax.startup && MathJax.startup.promise);
  const pending = Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'))
    .filter(s => !s.parentElement.querySelector('.jupyter-widgets')).length;
  const searching = location.pathname.endsWith('/search.html') && !document.querySelector('#search-results li');
  const images = Array.from(document.images).every(img => img.complete);
  if (typeset && !pending && !searching && images) {
    (mathjax ? MathJax.startup.promise : Promise.resolve()).then(() => done(true), () => done(false));
    return;
  }
  if (Date.now() - start > %d) { done({pending: pending, searching: searching}); return; }
  setTimeout(poll, 100);
})();""" % (TIMEOUT * 1000 - 2000)

# Opens every fold (MyST-NB's hidden cells are <details>; togglebutton hides with a class), then
# lists what is wider than its box or than the text column. An element is reported once, at the
# innermost of itself and its ancestors (up to the article) that overflows.
OVERFLOW = """
document.querySelectorAll('details').forEach(d => { d.open = true; });
document.querySelectorAll('.toggle-hidden').forEach(el => el.classList.remove('toggle-hidden'));
document.querySelectorAll('button.toggle-button').forEach(b => {
  if (b.getAttribute('aria-expanded') === 'false') b.click(); });
const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
const column = article.getBoundingClientRect();
const KINDS = [  // outputs first: a printed result is a highlighted block inside the cell output
  ['output', 'div.cell_output pre, div.cell_output .output, div.cell_output .text_html, div.cell_output img'],
  ['code', 'div.cell_input pre, div.highlight pre'],
  ['equation', 'mjx-container[display="true"], div.math'],
  ['table', 'table'],
];
const clips = el => ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(el).overflowX);
const wide = el => el.scrollWidth > el.clientWidth + 1;
const found = [], seen = new Set();
for (const [kind, selector] of KINDS) {
  for (const el of article.querySelectorAll(selector)) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;  // not rendered
    let culprit = null, why = '';
    for (let node = el; node && node !== article; node = node.parentElement) {
      if ((node === el || clips(node)) && wide(node)) {
        culprit = node; why = `scrollWidth ${node.scrollWidth} > clientWidth ${node.clientWidth}`; break;
      }
    }
    if (!culprit && box.right > column.right + 1) {
      culprit = el; why = `right edge ${Math.round(box.right)} > column ${Math.round(column.right)}`;
    }
    if (!culprit || seen.has(culprit)) continue;
    seen.add(culprit);
    const text = (el.innerText || el.textContent || el.getAttribute('src') || '').trim().replace(/\\s+/g, ' ');
    found.push(`${kind} "${Array.from(text).slice(0, 60).join('')}": ${why}`);  // whole code points
  }
}
const doc = document.documentElement;
if (doc.scrollWidth > doc.clientWidth + 1)
  found.push(`the page itself: scrollWidth ${doc.scrollWidth} > clientWidth ${doc.clientWidth}`);
return found;"""


def open_page(driver, address: str, page: str) -> None:
    driver.get(address)
    ready = driver.execute_async_script(READY)
    assert ready is True, f"{page}: the page did not finish rendering: {ready}"


def screenshot(driver, page: str, screens: int = 60) -> None:
    """``test-artifacts/screens/<page>-NN.png``: the page as a reader at 1366 x 900 sees it,
    one viewport per file from the top down (at most ``screens``), folds closed. (A capture
    beyond the viewport lays the page out at its full height, which moves the sidebars.)"""
    SCREENS.mkdir(parents=True, exist_ok=True)
    name = page.split("?")[0].removesuffix(".html").replace("/", "_")
    for old in SCREENS.glob(f"{name}-*.png"):
        old.unlink()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    for k, top in enumerate(range(0, height, HEIGHT - 100)[:screens]):  # 100 px overlap
        driver.execute_script("window.scrollTo(0, arguments[0])", top)
        driver.execute_async_script(
            "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(done));")
        driver.save_screenshot(str(SCREENS / f"{name}-{k + 1:02d}.png"))
    driver.execute_script("window.scrollTo(0, 0)")


def test_every_page_of_the_site_is_checked(book_site):
    """A page the book gains is added to PAGES (the highlighted module sources aside)."""
    built = {str(path.relative_to(book_site)) for path in book_site.glob("**/*.html")
             if not {"_static", "_sources", "_images", "_modules"} & set(path.relative_to(book_site).parts)}
    assert built == {page.split("?")[0] for page in PAGES}


def test_overflow_check_finds_a_page_that_scrolls_sideways(browser, tmp_path):
    """The guard first: a long code line, a wide table and a wide equation box are found."""
    page = tmp_path / "wide.html"
    page.write_text(
        '<html><body><article class="bd-article" style="width: 600px">'
        '<div class="cell_input"><div class="highlight"><pre style="overflow-x: auto">'
        + "x" * 200 + '</pre></div></div>'
        '<table><tr>' + "<td>wide_cell_content</td>" * 40 + '</tr></table>'
        '<div class="math" style="overflow-x: auto"><span style="display: inline-block; width: 900px">'
        'E</span></div>'
        '<div class="cell_input"><div class="highlight"><pre>short</pre></div></div>'
        '</article></body></html>', encoding="utf-8")
    browser.get(page.as_uri())
    found = browser.execute_script(OVERFLOW)
    kinds = sorted(entry.split(" ")[0] for entry in found if not entry.startswith("the page"))
    assert kinds == ["code", "equation", "table"], found
    page.write_text('<html><body><article class="bd-article" style="width: 600px">'
                    '<div class="highlight"><pre>short</pre></div></article></body></html>')
    browser.get(page.as_uri())
    assert browser.execute_script(OVERFLOW) == []


@pytest.mark.parametrize("page", PAGES)
def test_nothing_scrolls_sideways(browser, url, page):
    open_page(browser, f"{url}/{page}", page)
    found = browser.execute_script(OVERFLOW)  # opens every fold
    if os.environ.get("LABKIT_SCREENS"):
        open_page(browser, f"{url}/{page}", page)  # folds closed again, as a reader finds them
        screenshot(browser, page)
    assert not found, f"{page} at {WIDTH} px: {len(found)} element(s) scroll sideways:\n" + "\n".join(found)
