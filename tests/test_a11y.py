"""Accessibility of the book (WCAG 2.1 AA): axe-core on every page, in headless Chromium.

The site is built from the committed notebooks with execution off (as ``make book
BOOK_ARGS=--no-execute`` does) once for every book test of a session (the ``book_site``
fixture of ``tests/conftest.py``), or ``$LABKIT_BOOK_SITE`` is checked
instead (e.g. ``site`` after ``make book``). It is served on 127.0.0.1, and every page is
opened: the landing page, every notebook, the reference pages, the indexes, the source pages
and the search page with a query. Once formulas and widgets have rendered, axe-core (the npm
package in ``book/node_modules``, injected into the page: nothing loads from a CDN) runs the
rule sets of WCAG 2.0 and 2.1 at levels A and AA. Any violation fails, naming the page, the
rule and the nodes.

Beyond axe: one explorer is driven by keyboard alone (a slider handle takes focus, the right
arrow switches the frame); every page has one ``h1``, no skipped heading level and
``lang="en"``; MathJax keeps assistive MathML beside each formula; and every static figure of
a notebook carries alt text that states its finding (the figure's title, stored in the PNG by
``labkit.plotting`` and set as ``alt`` by the book's ``conf.py``), not a file name.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "book" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = next(filter(None, map(shutil.which, ["chromium", "chromium-browser", "google-chrome"])), None)
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,900"]
TIMEOUT = 60  # seconds for MathJax and the widgets on a busy 2-core machine
AXE_TIMEOUT = 300  # seconds for axe on the longest page (the API reference) on a busy machine
RULE_SETS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SEARCH = "search.html?q=empirical_score"


@pytest.fixture(scope="module")
def site(book_site) -> Path:
    """The book of the committed notebooks, built once per session (tests/conftest.py)."""
    return book_site


# Every page of the book, and the search page with a query. Of the highlighted source pages
# (``_modules/``, one per module, all from one template and one code style) the index and one
# module are checked: axe's contrast rule takes seconds on each.
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PAGES = ["index.html", *(f"notebooks/{path.stem}.html" for path in NOTEBOOKS), "background.html",
         "architecture.html", "paper-scale.html", "performance.html", "api.html", "bibliography.html", "course.html", "genindex.html",
         "py-modindex.html", "prf-prf.html", "_modules/index.html", "_modules/labkit/scores.html", SEARCH]


def test_every_page_of_the_site_is_checked(site):
    """A page the book gains is added to PAGES (the highlighted source pages aside)."""
    built = {str(path.relative_to(site)) for path in site.glob("**/*.html")
             if not {"_static", "_sources", "_images", "_modules"} & set(path.relative_to(site).parts)}
    checked = {page.split("?")[0] for page in PAGES}
    assert built - checked == set() and checked - built <= {"_modules/index.html", "_modules/labkit/scores.html"}


@pytest.fixture(scope="module")
def url(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("accessibility test skipped: no chromium/chromedriver on PATH (run `make browser`)")
    pytest.importorskip("selenium", reason="accessibility test skipped: selenium is not installed (run `make browser`)")
    if not AXE.is_file():
        pytest.skip(f"accessibility test skipped: {AXE.relative_to(ROOT)} missing (run `make assets`)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-a11y')}")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never fetch a driver or browser
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(AXE_TIMEOUT)
    driver.command_executor._client_config.timeout = AXE_TIMEOUT + 30  # the API page is long
    yield driver
    driver.quit()


# Resolves once the page is what a reader gets: MathJax done, every widget view rendered,
# search results listed.
READY = """
const done = arguments[arguments.length - 1], start = Date.now();
(function poll() {
  const mathjax = document.querySelector('script[src*="mathjax/"]');
  const typeset = !mathjax || (window.MathJax && MathJax.startup && MathJax.startup.promise);
  const pending = Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'))
    .filter(s => !s.parentElement.querySelector('.jupyter-widgets')).length;
  const searching = location.pathname.endsWith('/search.html') && !document.querySelector('#search-results li');
  if (typeset && !pending && !searching) {
    (mathjax ? MathJax.startup.promise : Promise.resolve()).then(() => done(true), () => done(false));
    return;
  }
  if (Date.now() - start > %d) { done({pending: pending, searching: searching}); return; }
  setTimeout(poll, 100);
})();""" % (TIMEOUT * 1000 - 2000)

RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
  .then(r => done(r.violations.map(v => ({rule: v.id, impact: v.impact, help: v.help,
                                            nodes: v.nodes.map(n => ({target: n.target.join(' '),
                                                                      summary: n.failureSummary}))}))),
        e => done({error: String(e)}));"""


def open_page(driver, address: str, page: str) -> None:
    driver.get(address)
    ready = driver.execute_async_script(READY)
    assert ready is True, f"{page}: the page did not finish rendering: {ready}"


def axe_violations(driver) -> list[dict]:
    if not driver.execute_script("return !!window.axe"):
        driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(RUN_AXE, RULE_SETS)
    assert not isinstance(result, dict), f"axe-core failed: {result}"
    return result


@pytest.mark.parametrize("page", PAGES)
def test_axe_finds_no_wcag_violation(browser, url, page):
    """axe-core's WCAG 2.0/2.1 A and AA rules, then the page's structure (``check_structure``)."""
    started = time.monotonic()
    open_page(browser, f"{url}/{page}", page)
    violations = axe_violations(browser)
    counts = ", ".join(f"{v['rule']} {len(v['nodes'])}" for v in violations) or "none"
    print(f"\n{page}: axe-core ({time.monotonic() - started:.1f} s): {counts}", flush=True)
    report = [f"{page}: {v['rule']} ({v['impact']}: {v['help']}), {len(v['nodes'])} node(s): "
              + "; ".join(n["target"] for n in v["nodes"][:5]) + f"\n    {v['nodes'][0]['summary']}"
              for v in violations]
    assert not report, "axe-core found WCAG 2.1 A/AA violations:\n" + "\n".join(report)
    if not page.startswith(("_modules", "search")):  # generated pages: their headings are Sphinx's
        check_structure(browser, page)


# Headings, language and assistive MathML, as a reader's assistive technology gets them.
STRUCTURE = """
// Only what is rendered counts: the theme's print-only header (display: none on screen) repeats the h1.
const rendered = el => el.getClientRects().length > 0 || el.closest('details:not([open])');
const article = document.querySelector('article.bd-article') || document.body;
const levels = Array.from(article.querySelectorAll('h1, h2, h3, h4, h5, h6'))
  .filter(rendered).map(h => Number(h.tagName[1]));
return {lang: document.documentElement.lang, h1: Array.from(document.querySelectorAll('h1')).filter(rendered).length,
        levels: levels,
        math: document.querySelectorAll('mjx-container').length,
        assistive: document.querySelectorAll('mjx-container mjx-assistive-mml math').length};"""


def check_structure(browser, page: str) -> None:
    """One rendered ``h1``, no skipped heading level, ``lang="en"``, assistive MathML everywhere."""
    state = browser.execute_script(STRUCTURE)
    assert state["lang"] == "en", f"{page}: <html lang={state['lang']!r}>"
    assert state["h1"] == 1, f"{page}: {state['h1']} h1 elements"
    skips = [(a, b) for a, b in zip(state["levels"], state["levels"][1:]) if b > a + 1]
    assert not skips, f"{page}: heading levels skip: {skips} in {state['levels']}"
    assert state["assistive"] == state["math"], \
        f"{page}: {state['math'] - state['assistive']} of {state['math']} formulas without assistive MathML"


PLACEHOLDER_ALT = "No description has been provided for this image"


@pytest.mark.parametrize("page", [page for page in PAGES if page.startswith("notebooks/")])
def test_static_figures_have_alt_text_that_states_the_finding(site, page):
    """Every figure a notebook shows has alt text (its title, from the PNG), not a file name.

    Notebooks last executed before ``labkit.plotting`` stored titles in their PNGs show none:
    ``make book`` (which re-executes them) fixes that; until then this test is an expected
    failure naming the notebook."""
    import html.parser

    class Images(html.parser.HTMLParser):
        alts: list[str] = []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "img" and "widget-image" not in (attrs.get("class") or ""):
                self.alts.append(attrs.get("alt") or "")

    parser = Images()
    parser.alts = []
    parser.feed((site / page).read_text(encoding="utf-8"))
    missing = [alt for alt in parser.alts if not alt or alt.endswith(".png") or alt == PLACEHOLDER_ALT]
    if missing and len(missing) == len(parser.alts):
        pytest.xfail(f"{page}: no figure carries its title yet (re-execute the notebook with `make book`)")
    assert not missing, f"{page}: {len(missing)} of {len(parser.alts)} figures without alt text: {missing[:3]}"


def test_an_explorer_works_by_keyboard_alone(browser, url):
    """Tab to a slider handle (no mouse), press the right arrow: the frame switches, and the
    handle is named after its slider's label."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    page = "notebooks/00_primer.html"
    open_page(browser, f"{url}/{page}", page)
    frame = "return Array.from(document.querySelectorAll('.labkit-explorer img.widget-image'))" \
            ".filter(i => i.getBoundingClientRect().width > 0).map(i => i.src + '|' + (i.alt || i.title))[0]"
    first = browser.execute_script("return document.querySelector('.labkit-explorer .noUi-handle')")
    assert first is not None, f"{page}: no explorer slider"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});"
                           "document.activeElement && document.activeElement.blur();", first)
    # Focus the handle by tabbing from the element just before it, as a keyboard user would.
    browser.execute_script("""const h = arguments[0], b = document.createElement('button');
      b.id = 'labkit-kbd-start'; b.textContent = 'start'; h.closest('.labkit-explorer').before(b); b.focus();""",
                           first)
    for _ in range(20):
        if browser.switch_to.active_element == first:
            break
        ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element == first, "Tab never reached the explorer's first slider handle"
    label = browser.execute_script(
        "const id = arguments[0].getAttribute('aria-labelledby');"
        "return id && document.getElementById(id) ? document.getElementById(id).textContent.trim() : null", first)
    assert label, "the focused slider handle has no accessible name (aria-labelledby)"
    before = browser.execute_script(frame)
    ActionChains(browser).send_keys(Keys.ARROW_RIGHT).perform()
    end = time.monotonic() + 10
    while browser.execute_script(frame) == before and time.monotonic() < end:
        time.sleep(0.1)
    after = browser.execute_script(frame)
    assert after != before, f"ArrowRight on slider {label!r} did not switch the explorer's frame"
