"""Check the internal links of a built HTML site, offline (the last step of ``make book``).

Every ``href`` and ``src`` in every page (``_static/`` holds assets, not pages) that points inside the site (no scheme, not ``//``)
must name a file that exists, and its ``#fragment``, if any, an ``id`` (or ``name``) in that
file. External links are not followed (the book is built and read offline); they are listed
with ``--external``. Sphinx's ``linkcheck`` builder does the same over the network.

Usage: python scripts/check_links.py [--external] SITE
"""

from __future__ import annotations

import argparse
import sys
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(name):
                self.ids.add(attrs[name])
        for name in ("href", "src"):
            if attrs.get(name) and not (tag == "link" and attrs.get("rel") in ("preconnect", "dns-prefetch")):
                self.links.append(attrs[name])


@cache
def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def check(site: Path) -> tuple[list[str], list[str]]:
    """(broken internal links as ``page: link (why)``, external links) of the site at ``site``."""
    site = site.resolve()
    parse.cache_clear()  # pages may have changed since the last check
    broken, external = [], set()
    for page_path in sorted(site.rglob("*.html")):
        if page_path.relative_to(site).parts[0] == "_static":  # theme template fragments, not pages
            continue
        page = parse(page_path)
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                if parts.scheme in ("http", "https"):
                    external.add(link)
                continue
            if link.startswith("#") and link[1:]:
                target = page_path
            elif parts.path:
                target = (page_path.parent / unquote(parts.path)).resolve()
                if target.is_dir():
                    target = target / "index.html"
            else:
                continue
            where = f"{page_path.relative_to(site)}: {link}"
            if not target.is_relative_to(site):
                broken.append(f"{where} (outside the site)")
            elif not target.is_file():
                broken.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in parse(target).ids:
                broken.append(f"{where} (no id {parts.fragment!r} in {target.relative_to(site)})")
    return broken, sorted(external)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="the built site, e.g. site/")
    parser.add_argument("--external", action="store_true", help="also list the external links")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        parser.error(f"{args.site} has no index.html: build the book first (make book)")
    broken, external = check(args.site)
    if args.external:
        print("\n".join(external))
    for line in broken:
        print(f"broken link: {line}", file=sys.stderr)
    print(f"internal links of {args.site}: {'OK' if not broken else f'{len(broken)} broken'}"
          f" ({len(external)} external links not followed)")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
