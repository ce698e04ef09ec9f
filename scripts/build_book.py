"""Build labkit's offline HTML book (``make book``).

1. Execute every ``notebooks/*.ipynb`` in order at full size, each in a fresh kernel, and
   write it back in place with its outputs and widget state (so the committed notebooks are
   exactly what the book shows). The measured runtime goes into the notebook's metadata
   (``metadata.labkit.runtime_s``) and is printed.
2. Render one page per notebook (nbconvert's lab template plus a navigation bar) and an index
   page (what the lab teaches; each notebook with its runtime and key figure) into ``site/``.
3. Ship the widget renderer (``@jupyter-widgets/html-manager``), require.js and MathJax 2 from
   ``book/node_modules`` (``make assets``) into ``site/assets/``: the book needs no network.

``--no-execute`` renders the committed notebooks as they are (the browser test uses it on a
temporary folder). A notebook's key figure (a name in ``figures/``) is its
``metadata.labkit.key_figure`` when set, else its entry in ``book/key_figures.json``, else the
first figure it saves with ``savefig``.

Usage: python scripts/build_book.py [--no-execute] [--jobs 1] [--out site] [--timeout 1800] [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import jinja2
import markupsafe
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from labkit.plotting import figures_dir

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
NODE_MODULES = BOOK / "node_modules"
MATHJAX_CONFIG = "TeX-AMS_CHTML-full,Safe"  # what nbconvert's mathjax macro configures

# (source under book/node_modules, destination under site/assets): only what the pages load.
ASSETS = [
    ("requirejs/require.js", "require.js"),
    ("@jupyter-widgets/html-manager/dist", "html-manager"),
    ("mathjax/MathJax.js", "mathjax/MathJax.js"),
    ("mathjax/config/TeX-AMS_CHTML-full.js", "mathjax/config/TeX-AMS_CHTML-full.js"),
    ("mathjax/config/Safe.js", "mathjax/config/Safe.js"),
    ("mathjax/extensions", "mathjax/extensions"),
    ("mathjax/jax/input/TeX", "mathjax/jax/input/TeX"),
    ("mathjax/jax/output/CommonHTML", "mathjax/jax/output/CommonHTML"),
    ("mathjax/jax/element", "mathjax/jax/element"),
    ("mathjax/fonts/HTML-CSS/TeX/woff", "mathjax/fonts/HTML-CSS/TeX/woff"),
]
FIGURE_LINK = re.compile(r"(\]\(|src=[\"'])\.\./figures/")
SKIP_ASSETS = shutil.ignore_patterns("*.map", "embed.js", "libembed-amd.js", "*.LICENSE.txt")


def format_runtime(seconds: float | None) -> str:
    if seconds is None:
        return "runtime not measured (not executed by make book)"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s on CPU" if minutes else f"{seconds:.0f} s on CPU"


def execute(path: Path, timeout: int) -> float:
    """Run ``path`` top to bottom in a fresh kernel at full size; write it back atomically."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)  # a run that shows no widget must not keep a stale state
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, record_timing=False,
                            store_widget_state=True, resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nb.metadata.setdefault("labkit", {})["runtime_s"] = round(elapsed, 1)
    tmp = path.with_name(path.name + ".tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)
    return elapsed


def try_execute(path: Path, timeout: int) -> tuple[float | None, str | None]:
    """``execute`` in a worker process: (seconds, None) or (None, the error's last line)."""
    try:
        return execute(path, timeout), None
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        lines = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()
        return None, lines[-1] if lines else type(error).__name__


def title_and_summary(nb) -> tuple[str, str]:
    """The first markdown cell's ``#`` heading, and its first paragraph as HTML (the lead-in
    label such as "**What you will learn.**" dropped, cut after ~300 characters at a sentence)."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.strip().splitlines()
        title = next((line.lstrip("#").strip() for line in lines if line.startswith("#")), "")
        body = "\n".join(line for line in lines if not line.startswith("#")).strip()
        paragraph = re.split(r"\n\s*\n", body)[0].replace("\n", " ").strip()
        paragraph = re.sub(r"^\*\*[^*]{1,40}[.:]\*\*\s*", "", paragraph)
        sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z])", paragraph)
        summary = sentences[0]
        for sentence in sentences[1:]:
            if len(summary) + len(sentence) > 300:
                break
            summary += " " + sentence
        html = markdown2html_mistune(summary).strip()
        return title, re.sub(r"^<p>(.*)</p>$", r"\1", html, flags=re.S)
    return "", ""


def key_figure(path: Path, nb, figures: Path) -> Path | None:
    """The figure the index shows for a notebook: ``metadata.labkit.key_figure``, else the entry
    for the notebook in ``book/key_figures.json``, else the first figure it saves."""
    chosen = json.loads((BOOK / "key_figures.json").read_text()) if (BOOK / "key_figures.json").is_file() else {}
    name = nb.metadata.get("labkit", {}).get("key_figure") or chosen.get(path.stem)
    if name is None:
        for cell in nb.cells:
            if cell.cell_type == "code":
                match = re.search(r"savefig\([^,]+,\s*[rf]?[\"'](\d\d_[\w\-.]+?)(?:\.png)?[\"']", cell.source)
                if match:
                    name = match.group(1)
                    break
    if name is None:
        return None
    figure = figures / (name if name.endswith(".png") else f"{name}.png")
    if not figure.is_file():
        print(f"  {path.name}: key figure {figure.name} not found in {figures}", file=sys.stderr)
        return None
    return figure


def copy_assets(out: Path) -> None:
    if not (NODE_MODULES / "@jupyter-widgets/html-manager").is_dir():
        sys.exit(f"book assets missing in {NODE_MODULES}: run `make assets` (npm ci in book/) first")
    assets = out / "assets"
    for source, dest in ASSETS:
        source, dest = NODE_MODULES / source, assets / dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, ignore=SKIP_ASSETS, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest)
    shutil.copy2(BOOK / "book.css", assets / "book.css")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def render(notebooks: list[Path], out: Path, figures: Path) -> None:
    """Write one page per notebook and the index into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    copy_assets(out)
    (out / "figures").mkdir(exist_ok=True)
    mathjax_url = f"assets/mathjax/MathJax.js?config={MATHJAX_CONFIG}"
    exporter = HTMLExporter(
        template_name="labkit", extra_template_basedirs=[str(BOOK / "templates")],
        require_js_url="assets/require.js", mathjax_url=mathjax_url,
        widget_renderer_url="assets/html-manager/embed-amd.js")

    # Markdown may show a saved figure as ../figures/NN_x.png (relative to notebooks/); the
    # book ships figures/ beside its pages.
    for figure in sorted(figures.glob("*.png")):
        shutil.copy2(figure, out / "figures" / figure.name)
    nbs = [nbformat.read(path, as_version=4) for path in notebooks]
    for nb in nbs:
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = FIGURE_LINK.sub(r"\1figures/", cell.source)
    entries = []
    for path, nb in zip(notebooks, nbs):
        title, summary = title_and_summary(nb)
        figure = key_figure(path, nb, figures)
        entries.append({
            "href": f"{path.stem}.html", "title": title or path.stem, "summary": markupsafe.Markup(summary),
            "runtime": format_runtime(nb.metadata.get("labkit", {}).get("runtime_s")),
            "figure": f"figures/{figure.name}" if figure is not None else None,
        })
    for i, (path, nb) in enumerate(zip(notebooks, nbs)):
        book = {"prev": entries[i - 1] if i > 0 else None,
                "next": entries[i + 1] if i + 1 < len(entries) else None,
                "runtime": entries[i]["runtime"], "asset_prefix": "assets/"}
        body, _ = exporter.from_notebook_node(
            nb, resources={"metadata": {"name": entries[i]["title"], "path": str(path.parent)}, "labkit": book})
        write_atomic(out / entries[i]["href"], body)

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(BOOK / "templates"), autoescape=True)
    page = env.get_template("book_index.html.j2").render(
        notebooks=entries, mathjax_url=mathjax_url)
    write_atomic(out / "index.html", page)
    pages = {entry["href"] for entry in entries} | {"index.html"}
    for stale in out.glob("*.html"):  # pages of notebooks that no longer exist
        if stale.name not in pages:
            stale.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb in order")
    parser.add_argument("--out", type=Path, default=ROOT / "site", help="output folder (default: site/)")
    parser.add_argument("--no-execute", action="store_true", help="render the committed notebooks as they are")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    parser.add_argument("--jobs", type=int, default=1,
                        help="notebooks executed at once (default 1: runtimes measured without contention)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.timeout < 1:
        parser.error("--jobs and --timeout must be positive")

    notebooks = sorted(args.notebooks or (ROOT / "notebooks").glob("*.ipynb"))
    if not notebooks:
        sys.exit("no notebooks to build: notebooks/*.ipynb is empty")
    missing = [str(path) for path in notebooks if not path.is_file()]
    if missing:
        sys.exit(f"not found: {', '.join(missing)}")

    failed = []
    if not args.no_execute:
        # The book shows the full-size runs; the test-run size switch must not leak into them.
        os.environ.pop("LABKIT_FAST", None)
        start = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            runs = {path: pool.submit(try_execute, path, args.timeout) for path in notebooks}
            print(f"executing {len(notebooks)} notebook(s) at full size, {args.jobs} at a time ...", flush=True)
            for path, run in runs.items():
                seconds, error = run.result()
                if error is None:
                    print(f"  {path.name}: {format_runtime(seconds)}", flush=True)
                else:
                    failed.append(path.name)
                    print(f"  {path.name}: FAILED ({error}); left as it was", flush=True)
        print(f"executed {len(notebooks) - len(failed)} notebook(s) in {format_runtime(time.perf_counter() - start)}")

    render(notebooks, args.out, figures_dir())
    index = (args.out / "index.html").resolve()
    print(f"book written to {args.out}/: open {index.as_uri()}\n"
          f"  or serve it: python -m http.server --directory {args.out} 8000  ->  http://127.0.0.1:8000/")
    if failed:
        print(f"notebooks that failed (left as committed): {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
