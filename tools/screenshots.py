"""Screenshots of a run in TensorBoard, taken with a headless Chromium, for docs/images/ (make screenshots).

Usage:
  python tools/screenshots.py RUN_DIR [OUT_DIR]        # OUT_DIR defaults to docs/images

Starts TensorBoard on RUN_DIR's event files on a free local port, loads each view below in a headless Chromium
(`chromium`, `chromium-browser` or `google-chrome` on the PATH; Debian: apt-get install chromium), writes one PNG
per view, and copies the run's transition figure beside them. Not part of the test suite: it needs a browser.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# (file name, dashboard, TensorBoard query): a dashboard filtered to a group of tags. Smoothing 0 draws the
# values as logged, which is what a reader of the stage line wants.
VIEWS = (
    ("tensorboard_stage.png", "timeseries", {"tagFilter": "curriculum/stage|train/loss|lr-", "smoothing": "0"}),
    ("tensorboard_transitions.png", "timeseries", {"tagFilter": "transition/", "smoothing": "0"}),
    ("tensorboard_thoughts.png", "timeseries", {"tagFilter": "thoughts/", "smoothing": "0"}),
    ("tensorboard_readout.png", "text", {"tagFilter": "thoughts/readout"}),
)
COPIED = ("transitions.png",)  # figures the run writes itself


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(f"no headless browser found (looked for {', '.join(BROWSERS)}); on Debian: apt-get install "
                     "chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"TensorBoard did not answer at {url} within {seconds:.0f} s")


def screenshot(page, url: str, out: Path) -> None:
    """Load `url`, give TensorBoard time to draw, capture the page."""
    page.goto(url, wait_until="load")
    page.wait_for_timeout(5_000)  # TensorBoard fetches the series and draws them after the load event
    page.screenshot(path=str(out), full_page=False)


# TensorBoard's own settings, as its settings pane stores them in the browser: the whole value range (its default
# "ignore outliers" cuts stage 0 off the stage chart), no smoothing, the settings pane closed, a narrow run list.
SETTINGS = {"ignoreOutliers": False, "scalarSmoothing": 0, "timeSeriesSettingsPaneOpened": False,
            "sideBarWidthInPercent": 12}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) > 1 else 2
    run_dir = Path(sys.argv[1])
    out_dir = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "images"
    events = run_dir / "tensorboard"
    if not events.is_dir():
        raise SystemExit(f"{run_dir}: no tensorboard/ folder; is it a run folder of a finished coconut train?")
    chrome = browser()
    out_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    board = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(events), "--port", str(port),
                              "--host", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/"
        wait_for(base + "data/runs")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as driver:
            chromium = driver.chromium.launch(executable_path=chrome, args=["--no-sandbox"])
            page = chromium.new_page(viewport={"width": 1500, "height": 950})
            page.add_init_script(f"window.localStorage.setItem('_tb_global_settings', '{json.dumps(SETTINGS)}')")
            for name, dashboard, query in VIEWS:
                screenshot(page, f"{base}?{urlencode(query)}#{dashboard}", out_dir / name)
                print(out_dir / name)
            chromium.close()
    finally:
        board.terminate()
        board.wait(timeout=30)
    for name in COPIED:
        if (run_dir / name).exists():
            shutil.copyfile(run_dir / name, out_dir / name)
            print(out_dir / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
