"""The page of `serpentir serve` in a real browser: headless Debian chromium, driven by Playwright.

A person's path: open the page, pick a task, choose a photo, restore, compare, download. The downloaded
PNG must be the file `serpentir restore` writes for the same photo. A screenshot goes into the test's
output folder. Without /usr/bin/chromium this fails (CI installs it): a skipped browser test would hide
a broken page.
"""

import io
import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from real_photos import photo
from serve_server import SMALLEST_TASK, cli_restore, running_server
from serpentir.degradations import get_task
from serpentir.image_io import save_image
from serpentir.infer import DEFAULT_TASK

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives it a fresh temporary --user-data-dir; it never downloads a browser of its own.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    """One server for the module's pages."""
    with running_server(tmp_path_factory.mktemp("serve_browser")) as (url, _):
        yield url


def test_upload_restore_compare_download(browser, url, tmp_path):
    noisy = get_task(SMALLEST_TASK)(photo("chelsea", (150, 200), top=40, left=120), seed=0)
    source = tmp_path / "noisy cat.png"
    save_image(noisy, source)
    reference = cli_restore(source, SMALLEST_TASK)

    page = browser.new_page(viewport={"width": 1000, "height": 900})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(url + "/")
    page.wait_for_selector(f"#task option[value={SMALLEST_TASK}]", state="attached")
    assert page.input_value("#task") == DEFAULT_TASK  # the default model is preselected
    # every bundled task but inpaint (it needs a mask the page cannot paint) is offered, and the page says so
    with urllib.request.urlopen(f"{url}/api/models") as response:
        models = json.loads(response.read())["models"]
    assert [m["task"] for m in models if m["needs_mask"]] == ["inpaint"]
    offered = page.eval_on_selector_all("#task option", "os => os.map(o => o.value)")
    assert offered == [m["task"] for m in models if not m["needs_mask"]]
    assert page.is_visible("#mask-tasks") and "inpaint" in page.inner_text("#mask-tasks")
    page.select_option("#task", SMALLEST_TASK)
    page.set_input_files("#file", str(source))
    assert page.is_enabled("#restore")
    page.click("#restore")
    page.wait_for_selector("body[data-result=ready]", timeout=120_000)
    assert page.inner_text("#status").startswith(f"Restored 200x150 with {SMALLEST_TASK} in")
    assert page.is_hidden("#error")
    assert page.is_visible("#compare") and page.is_hidden("#side")  # the slider first

    # the slider moves the split; side by side shows both images
    page.fill("#split", "30")
    assert "30%" in page.eval_on_selector("#after-img", "e => e.style.clipPath")
    page.click("#mode-side")
    assert page.is_visible("#side") and page.is_hidden("#compare")
    sizes = page.eval_on_selector_all("#side img", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
    assert sizes == [[200, 150], [200, 150]]
    page.click("#mode-slider")
    assert page.is_visible("#compare") and page.is_hidden("#side")

    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "noisy cat-restored.png"
    downloaded = tmp_path / "downloaded.png"
    download.value.save_as(downloaded)
    screenshot = tmp_path / "serve_page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")

    assert downloaded.read_bytes() == reference
    restored = np.asarray(Image.open(io.BytesIO(reference)))
    assert np.array_equal(np.asarray(Image.open(downloaded)), restored) and restored.shape == (150, 200, 3)
    offsite = [u for u in requests if not u.startswith((url + "/", "blob:", "data:"))]
    assert offsite == [], offsite  # nothing fetched from elsewhere: the page works offline
    assert console_errors == []


def test_a_sample_photo_then_a_dropped_bad_file(browser, url, tmp_path):
    page = browser.new_page()
    page.goto(url + "/")
    page.wait_for_selector("#sample option[value=chelsea]", state="attached")
    page.select_option("#task", "jpeg")
    page.select_option("#sample", "chelsea")
    page.wait_for_function("!document.querySelector('#restore').disabled")
    assert page.inner_text("#chosen").startswith("chelsea-jpeg.png")
    page.click("#restore")
    page.wait_for_selector("body[data-result=ready]", timeout=120_000)
    width, height = page.eval_on_selector("#after-img", "i => [i.naturalWidth, i.naturalHeight]")
    assert max(width, height) == 256  # the sample photo, shrunk for speed
    sample = tmp_path / "chelsea-jpeg.png"
    with urllib.request.urlopen(f"{url}/api/samples/chelsea.png?task=jpeg") as response:
        sample.write_bytes(response.read())
    with page.expect_download() as download:
        page.click("#download")
    download.value.save_as(tmp_path / "downloaded.png")
    assert (tmp_path / "downloaded.png").read_bytes() == cli_restore(sample, "jpeg")

    # a file dropped on the page (here one that is not an image) replaces the sample
    dropped = page.evaluate_handle("""() => {
        const dt = new DataTransfer();
        dt.items.add(new File(["not really a JPEG"], "holiday.jpg", {type: "image/jpeg"}));
        return dt;
    }""")
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    assert page.inner_text("#chosen").startswith("holiday.jpg")
    page.click("#restore")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error") == "holiday.jpg: not an image file (PNG, JPEG, TIFF, BMP or WebP expected)"
