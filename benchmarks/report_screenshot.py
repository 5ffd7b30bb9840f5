"""Render a report's report.html in headless Chromium and keep a screenshot (docs/report_screenshot.png).

    python benchmarks/report_screenshot.py runs/demo/report/report.html --out docs/report_screenshot.png

Needs Chromium's headless shell (Debian: apt-get install chromium-headless-shell) or chromium.  Prints the
browser used, the page's size and the screenshot's path; exits 1 when the page does not render (no image, or
an image that is blank).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


def browser() -> str | None:
    """The first of BROWSERS that runs (`--version`): a name on PATH may be a stub (Ubuntu's `chromium-browser`
    asks for the snap) or a browser missing its libraries."""
    for name in BROWSERS:
        exe = shutil.which(name)
        if exe is None:
            continue
        try:
            if subprocess.run([exe, "--version"], capture_output=True, timeout=30).returncode == 0:
                return exe
        except (OSError, subprocess.TimeoutExpired):
            pass
    return None


def screenshot(html: Path, out: Path, width: int = 1200, height: int = 2400, timeout: int = 120) -> Path:
    exe = browser()
    if exe is None:
        raise SystemExit(f"no headless browser found (tried {', '.join(BROWSERS)})")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
               f"--window-size={width},{height}", f"--screenshot={out.resolve()}", html.resolve().as_uri()]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)
    return out


def is_blank(png: Path) -> bool:
    from PIL import Image
    img = Image.open(png).convert("L")
    lo, hi = img.getextrema()
    return hi - lo < 10


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("html", type=Path)
    p.add_argument("--out", type=Path, default=Path("docs/report_screenshot.png"))
    p.add_argument("--width", type=int, default=1200)
    p.add_argument("--height", type=int, default=2400)
    args = p.parse_args()
    shot = screenshot(args.html, args.out, args.width, args.height)
    if not shot.exists() or is_blank(shot):
        print(f"{args.html} did not render", file=sys.stderr)
        return 1
    print(f"browser {browser()}; {args.width}x{args.height}; screenshot {shot} ({shot.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
