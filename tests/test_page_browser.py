"""The web page in headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against the real stack.

SCCDM_SCREENSHOT=docs/screenshot.png also saves a desktop-width screenshot after a transmission and a sweep.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("SCCDM_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page_at(browser, gateway_url):
    pages = []

    def open_page(width=1280, height=900):
        ctx = browser.new_context(viewport={"width": width, "height": height})
        page = ctx.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 4" not in m.text else None)
        page.goto(gateway_url + "/")
        pages.append((ctx, errors))
        return page, errors

    yield open_page
    for ctx, _ in pages:
        ctx.close()


# functions, not expressions: Playwright would eval() an expression, which the page's CSP forbids
REFINED_SHOWN = "() => document.querySelector('#m-refined').textContent.includes('SSIM')"


def metric(page, which):
    return page.locator(f"#m-{which}").text_content()


def images_loaded(page):
    return page.evaluate("""() => ['img-orig', 'img-shat', 'img-refined'].map(id => {
        const i = document.getElementById(id); return i.complete ? i.naturalWidth : 0; })""")


def ink(page, canvas_id):
    """How many pixels of a canvas something was drawn on."""
    return page.evaluate(f"""() => {{ const c = document.getElementById('{canvas_id}');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }}""")


def test_upload_change_snr_sweep(page_at):
    from gateway.page import STATIC

    page, errors = page_at()
    page.set_input_files("#file", str(STATIC / "samples" / "astronaut.png"))   # uploaded as a user's file
    page.wait_for_function(REFINED_SHOWN, timeout=60_000)
    assert images_loaded(page) == [64, 64, 64]
    before = (metric(page, "shat"), metric(page, "refined"))
    assert "PSNR" in before[0] and "dB" in before[1]
    assert ink(page, "constellation") > 500
    assert "total" in page.locator("#timings").inner_text()

    page.evaluate("""() => { const s = document.getElementById('snr'); s.value = '0';
        s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change')); }""")
    assert page.locator("#snr-out").inner_text() == "0 dB"
    page.wait_for_function("(b) => document.querySelector('#m-shat').textContent !== b", arg=before[0],
                           timeout=60_000)
    page.wait_for_function(REFINED_SHOWN, timeout=60_000)
    assert "at 0.0 dB" in page.locator("#link-info").inner_text()
    assert metric(page, "refined") != before[1]

    page.click("#sweep")
    page.wait_for_selector("#sweep-panel[data-done=true]", timeout=150_000)
    rows = page.locator("#sweep-table tbody tr").all_inner_texts()
    assert len(rows) == 6 and all(len(r.split()) == 4 and "\u2014" not in r for r in rows), rows
    assert ink(page, "sweep-plot") > 2000
    assert page.locator("#error").is_hidden()
    shot = os.environ.get("SCCDM_SCREENSHOT")
    if shot:
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=shot, full_page=True)
    assert not errors, errors


def test_invalid_file_shows_a_readable_error(page_at):
    page, _ = page_at()
    page.set_input_files("#file", files=[{"name": "notes.txt", "mimeType": "text/plain",
                                          "buffer": b"these are my notes, not a picture\n" * 4}])
    err = page.locator("#error")
    err.wait_for(state="visible", timeout=30_000)
    text = err.inner_text()
    assert "HTTP 422" in text and "not an image" in text and "PNG" in text, text
    assert "{" not in text and "Traceback" not in text


def test_phone_width_has_no_horizontal_overflow(page_at):
    page, errors = page_at(390, 844)
    page.click(".sample >> nth=1")
    page.wait_for_function(REFINED_SHOWN, timeout=60_000)
    widths = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
                           " document.body.scrollWidth]")
    assert widths[0] <= widths[1] == 390 and widths[2] <= 390, widths
    boxes = page.evaluate("""() => [...document.querySelectorAll('main *')].filter(e => e.offsetParent !== null)
        .map(e => e.getBoundingClientRect()).filter(r => r.right > 390.5 || r.left < -0.5).length""")
    assert boxes == 0
    # the three images stack in one column on a phone
    xs = page.evaluate("() => ['img-orig', 'img-shat', 'img-refined'].map(id => "
                       "Math.round(document.getElementById(id).getBoundingClientRect().left))")
    assert len(set(xs)) == 1, xs
    if os.environ.get("SCCDM_SCREENSHOT_PHONE"):
        page.screenshot(path=os.environ["SCCDM_SCREENSHOT_PHONE"], full_page=True)
    assert not errors, errors
