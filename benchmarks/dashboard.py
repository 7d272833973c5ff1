"""Dashboard benchmark: the analysts' page's first render in a real headless browser, on the demo's data.

    python benchmarks/dashboard.py [--data-dir DIR] [--repeat 5]

Uses DIR's published warehouse (default: the repo's ./data, as `aiso demo` leaves it; run the demo first), builds
reports/dashboard/index.html as `aiso dashboard --build-only` does, then opens it `--repeat` times in Debian's
chromium (headless, real clock) and reads the page's own `data-paint-ms` (performance.now() when its first render
has finished: parsing the embedded data, every table and chart). The baseline, in the same run, is the same browser
opening a blank page, so the figure is the page's own cost. Target (issue 19): first render <= 2 s on the demo data.
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def open_page(url: str, profile: Path) -> tuple[float, str]:
    started = time.perf_counter()
    html = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-sync", "--disable-background-networking", f"--user-data-dir={profile}",
                           "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    return time.perf_counter() - started, html


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from aiso_pipeline import dashboard
    from aiso_pipeline.config import data_dir

    data = data_dir(args.data_dir)
    started = time.perf_counter()
    page = dashboard.build(data.warehouse, data.reports / "dashboard")
    build_s = time.perf_counter() - started
    size = page.stat().st_size
    with tempfile.TemporaryDirectory() as tmp:
        blank = Path(tmp) / "blank.html"
        blank.write_text("<!doctype html><title>blank</title><p>blank</p>")
        paints, walls, blanks = [], [], []
        for i in range(args.repeat):
            wall, html = open_page(page.as_uri(), Path(tmp) / f"p{i}")
            match = re.search(r'data-paint-ms="(\d+)"', html)
            if not match:
                raise SystemExit("the page did not record its first render (data-paint-ms): is it the dashboard?")
            paints.append(int(match.group(1)))
            walls.append(wall)
            blanks.append(open_page(blank.as_uri(), Path(tmp) / f"b{i}")[0])
    print(f"page: {page} ({size / 1e6:.2f} MB), built in {build_s:.2f} s")
    print(f"first render (the page's own clock): median {statistics.median(paints)} ms, max {max(paints)} ms "
          f"over {args.repeat} opens")
    print(f"browser wall per open: page {statistics.median(walls):.2f} s vs blank page "
          f"{statistics.median(blanks):.2f} s ({statistics.median(walls) / statistics.median(blanks):.2f}x)")
    verdict = "met" if max(paints) <= 2000 else "NOT met"
    print(f"target first render <= 2 s: {verdict}")


if __name__ == "__main__":
    main()
