"""The web page in headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against the real stack.

Also: the full-size photographs (scikit-image's bundled data) the gateway serves as samples, shown at native
size with zoom, a synchronised crop window and an error map computed in the page.

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


# ---- full-size photographs: native size, zoom, error map, synchronised crop window ----------------------------

VIEW_READY = ("() => { const r = document.getElementById('results'); return !r.hidden && !!r.dataset.view &&"
              " document.getElementById('m-shat').textContent.includes('PSNR'); }")


def sizes(page, el_id):
    """[naturalWidth, naturalHeight, clientWidth, clientHeight] of an image or canvas."""
    return page.evaluate("""(id) => { const e = document.getElementById(id);
        return e.tagName === 'IMG' ? [e.naturalWidth, e.naturalHeight, e.clientWidth, e.clientHeight]
                                   : [e.width, e.height, e.clientWidth, e.clientHeight]; }""", el_id)


def crop_at(page):
    return page.evaluate("() => { const p = document.getElementById('crop-panel');"
                         " return [Number(p.dataset.x0), Number(p.dataset.y0)]; }")


def test_photo_samples_are_served(http):
    photos = {p["name"]: p for p in http.get("/static/samples/photos.json").json()["photos"]}
    assert {n: (p["width"], p["height"]) for n, p in photos.items()} == {
        "astronaut": (512, 512), "coffee": (600, 400), "chelsea": (451, 300)}
    from PIL import Image
    import io
    r = http.get(photos["chelsea"]["src"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (451, 300)
    assert Image.open(io.BytesIO(http.get(photos["chelsea"]["thumb"]).content)).size == (96, 64)
    assert http.get("/static/samples/photo/nope.png").status_code == 404
    assert http.get("/static/samples/astronaut.png").status_code == 200   # the small samples stay


def test_full_size_photo_zoom_error_map_crop(page_at):
    page, errors = page_at()
    photo = ".sample.photo[data-name=chelsea]"      # 451x300, the smallest photograph: fast on CPU
    page.wait_for_selector(photo)
    assert page.locator(".sample").count() == 4 + 3   # the 64x64 samples are still there
    page.uncheck("#refine")
    page.click(photo)
    page.wait_for_function(VIEW_READY, timeout=60_000)
    assert "off" in metric(page, "refined")

    # 100 %: the received image (decoder output, refinement off) at its native size, in a scrollable box
    assert sizes(page, "img-shat")[:2] == [451, 300]
    for el in ("img-orig", "img-shat"):
        nw, nh, cw, ch = sizes(page, el)
        assert (cw, ch) == (nw, nh) == (451, 300), (el, nw, nh, cw, ch)
    assert page.evaluate("() => { const v = document.querySelector('#img-shat').closest('.viewport');"
                         " return v.scrollWidth > v.clientWidth; }")   # wider than its column: it scrolls
    # scrolling one box scrolls the others
    page.evaluate("() => { document.querySelector('#img-shat').closest('.viewport').scrollLeft = 40; }")
    page.wait_for_function("() => document.querySelector('#img-orig').closest('.viewport').scrollLeft === 40")

    # zoom: 200 % doubles the displayed size (pixelated), fit shrinks it to the column, 400 % is 4x
    page.click(".zoom[data-zoom='2']")
    assert sizes(page, "img-shat")[2:] == [902, 600]
    assert page.evaluate("() => getComputedStyle(document.getElementById('img-shat')).imageRendering") == "pixelated"
    page.click(".zoom[data-zoom='fit']")
    fit = sizes(page, "img-shat")[2]
    col = page.evaluate("() => document.querySelector('#img-shat').closest('.viewport').clientWidth")
    assert fit == col < 451, (fit, col)
    page.click(".zoom[data-zoom='4']")
    assert sizes(page, "img-orig")[2:] == [1804, 1200]
    page.click(".zoom[data-zoom='1']")
    assert sizes(page, "img-shat")[2:] == [451, 300]

    # error map: |received - sent| x4, drawn in the page, at the images' size, with a legend
    assert page.locator("#fig-err").is_hidden()
    page.check("#errmap")
    page.locator("#fig-err").wait_for(state="visible")
    assert sizes(page, "err-canvas") == [451, 300, 451, 300]
    lit = page.evaluate("""() => { const c = document.getElementById('err-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 0) n++; return n; }""")
    assert lit > 0.2 * 451 * 300, lit        # a lossy link: most pixels differ somewhat
    assert "\u00d74" in page.locator("#err-caption").inner_text()
    assert "4 \u00d7 mean" in page.locator("#err-legend-text").inner_text()
    assert "PSNR (report)" in page.locator("#m-err").inner_text()
    assert ink(page, "err-legend") == 256

    # crop view: starts in the middle; a click on one image moves the same window in all of them
    assert crop_at(page) == [194, 118]
    page.click(".zoom[data-zoom='2']")
    page.locator("#img-shat").click(position={"x": 100, "y": 60})      # image pixel (50, 30) at 200 %
    page.wait_for_function("() => document.getElementById('crop-panel').dataset.x0 === '18'")
    assert crop_at(page) == [18, 0]
    boxes = page.evaluate("""() => [...document.querySelectorAll('#results .stage')].filter(s => s.offsetParent)
        .map(s => { const b = s.querySelector('.cropbox'), i = s.firstElementChild.getBoundingClientRect(),
                           r = b.getBoundingClientRect();
                    return [Math.round(r.left - i.left), Math.round(r.top - i.top), Math.round(r.width)]; })""")
    assert boxes == [[36, 0, 128]] * 3, boxes      # original, received, error map; x 18 at 200 %, 64 px wide
    crops = page.evaluate("() => [...document.querySelectorAll('#crops canvas')].map(c => "
                          "[c.parentElement.textContent, c.width, c.dataset.x0, c.dataset.y0, c.clientWidth])")
    assert [c[0] for c in crops] == ["Original (sent)", "Received (decoder output)", "Error map"], crops
    assert all(c[1:] == [64, "18", "0", 256] for c in crops), crops
    # the crop of the original is exactly those pixels of the sent image
    assert page.evaluate("""() => { const img = document.getElementById('img-orig');
        const c = document.createElement('canvas'); c.width = 64; c.height = 64;
        const x = c.getContext('2d'); x.drawImage(img, 18, 0, 64, 64, 0, 0, 64, 64);
        const a = x.getImageData(0, 0, 64, 64).data;
        const crop = document.querySelector('#crops canvas');
        const b = crop.getContext('2d').getImageData(0, 0, 64, 64).data;
        return a.length === b.length && a.every((v, i) => v === b[i]); }""")
    # dragging on another image (the error map) moves it too
    page.locator("#fig-err .viewport").scroll_into_view_if_needed()
    page.evaluate("() => document.querySelectorAll('#results .viewport')"
                  ".forEach(v => { v.scrollLeft = 0; v.scrollTop = 0; })")
    box = page.locator("#err-canvas").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, box["y"] + 150, steps=4)
    page.mouse.up()
    page.wait_for_function("() => document.getElementById('crop-panel').dataset.x0 === '68'")
    assert crop_at(page) == [68, 43]       # pixel (100, 75) at 200 %, minus half the window
    assert page.locator("#error").is_hidden()
    assert not errors, errors


def test_bandwidth_select_sends_fewer_channel_uses(page_at):
    # "auto" model + a CBR the photo model cannot send: the services pick the rate-adaptive model
    page, errors = page_at()
    photo = ".sample.photo[data-name=chelsea]"      # 451x300: pads to 480x320 (window 4 at H/8)
    page.wait_for_selector(photo)
    page.uncheck("#refine")
    page.select_option("#cbr", label="1/48")
    page.click(photo)
    page.wait_for_function(VIEW_READY, timeout=60_000)
    low = page.locator("#link-info").inner_text()
    assert low.startswith("sc-cdm-paper-photo-rate;") and "9600 channel uses" in low, low   # 8 ch x 60 x 40 / 2
    low_psnr = metric(page, "shat")
    page.select_option("#cbr", label="1/12")
    page.wait_for_function("() => document.querySelector('#link-info').textContent.includes('38400 channel uses')",
                           timeout=60_000)
    assert page.locator("#link-info").inner_text().startswith("sc-cdm-paper-photo;")       # sends 1/12 itself
    page.wait_for_function(VIEW_READY, timeout=60_000)
    assert metric(page, "shat") != low_psnr
    assert page.locator("#error").is_hidden() and not errors, errors
