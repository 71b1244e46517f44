"""Make docs/serve_page.png, the README's picture of `serpentir serve`'s page.

Starts the server on a free loopback port, opens the page in headless Debian chromium (Playwright),
restores the astronaut sample with the default model and saves the page, palette-reduced to stay small.

    python scripts/serve_screenshot.py [docs/serve_page.png]
"""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(output: Path) -> None:
    server = subprocess.Popen([sys.executable, "-m", "serpentir", "serve", "--port", "0"], stdout=subprocess.PIPE,
                              text=True)
    try:
        url = server.stdout.readline().split()[2]
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "api/status", timeout=5).close()
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.goto(url)
            page.wait_for_selector("#sample option[value=astronaut]", state="attached")
            page.select_option("#sample", "astronaut")
            page.wait_for_function("!document.querySelector('#restore').disabled")
            page.click("#restore")
            page.wait_for_selector("body[data-result=ready]", timeout=300_000)
            page.fill("#split", "45")
            png = page.screenshot(full_page=True)
            browser.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    output.parent.mkdir(parents=True, exist_ok=True)
    image.save(output, optimize=True)
    print(f"wrote {output} ({output.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/serve_page.png"))
