"""Open shipml's HTML reports in headless Chromium: check them and take full-page screenshots.

A report must be one self-contained file that a browser shows completely offline: this opens
each file with the network blocked, and reports every request that leaves the file, every
console message or page error, every image that did not decode and any table or figure wider
than the page. With --out, it also saves a full-page PNG per report to look at.

    pip install playwright && apt-get install -y chromium
    python tools/report_screenshots.py report.html eval.html --out shots/

Exit code 1 when a report has a problem (each printed on its own line), 0 otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTH = 1200  # a laptop window; the page is 1,000 px wide at most

# What a loaded report looks like to the browser: its images, and what is wider than the page.
_INSPECT = """() => {
  const page = document.documentElement.clientWidth;
  const images = [...document.images];
  return {
    title: document.title,
    sections: [...document.querySelectorAll("section > h2")].map(h => h.textContent),
    images: images.length,
    broken: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt),
    scripts: document.scripts.length,
    overflow: [...document.querySelectorAll("section, header.hero, .plot img")]
      .filter(e => e.getBoundingClientRect().right > page + 1)
      .map(e => e.id || e.alt || e.tagName),
  };
}"""


def chromium_path() -> str | None:
    """The Chromium (or Chrome) executable to drive, or None when none is installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def check_reports(paths: list[Path], out: Path | None = None) -> dict[Path, dict]:
    """Open each report; return what the browser saw: ``problems`` (list of sentences),
    ``sections`` (the h2 headings), ``images`` (count) and ``title``."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError("no chromium found: apt-get install -y chromium")
    seen: dict[Path, dict] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=ARGS, headless=True)
        try:
            for path in paths:
                seen[path] = _check(browser, path.resolve(), out)
        finally:
            browser.close()
    return seen


def _check(browser, path: Path, out: Path | None) -> dict:
    problems: list[str] = []
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    url = path.as_uri()

    def route(request_route) -> None:
        if request_route.request.url != url and not request_route.request.url.startswith("data:"):
            problems.append(f"requests {request_route.request.url}")
            request_route.abort()
        else:
            request_route.continue_()

    page.route("**/*", route)
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.goto(url, wait_until="load")
    found = page.evaluate(_INSPECT)
    problems += [f"image not shown: {alt}" for alt in found["broken"]]
    problems += [f"wider than the page: {what}" for what in found["overflow"]]
    if found["scripts"]:
        problems.append(f"{found['scripts']} script element(s)")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out / f"{path.stem}.png"), full_page=True)
    page.close()
    return {**found, "problems": problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, help="HTML report files")
    parser.add_argument("--out", type=Path, help="folder for full-page PNG screenshots")
    args = parser.parse_args(argv)
    failed = False
    for path, found in check_reports(args.reports, args.out).items():
        status = "ok" if not found["problems"] else "PROBLEMS"
        print(f"{path}: {status} ({found['images']} images, {len(found['sections'])} sections)")
        for problem in found["problems"]:
            print(f"  {problem}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
