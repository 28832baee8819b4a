"""The rating page's layout and study hygiene in a real browser (Debian's chromium driven
by Playwright, at 1366x768): a rebuilt study on the same port shows its own images
(pixel-compared, no stale cache), flicker moves nothing (pixel-compared), the answer bar
of the 11-point scale never covers the image, large images start centred with a cue and
fit with one key, the key hints match what is on screen, the resume link is shown, can be
copied and resumes the session, names are matched ignoring case and spaces.

Needs `pip install playwright` and /usr/bin/chromium (`apt-get install chromium`);
never `playwright install`. Skips with the reason when either is missing.
"""
import io
import os
import shutil

import numpy as np
import pytest
from _human_support import LiveServer, make_folders, make_study
from PIL import Image

from fastiqa.human import init_study, open_study

CHROMIUM = os.environ.get("FASTIQA_CHROMIUM", "/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _page(browser, viewport=LAPTOP, **kw):
    ctx = browser.new_context(viewport=viewport, **kw)
    page = ctx.new_page()
    page.set_default_timeout(30000)
    return ctx, page


def _start(page, url, name, close_resume=True):
    page.goto(url)
    page.fill("#name", name)
    page.keyboard.press("Enter")
    page.wait_for_selector("#resume-box", state="visible")
    if close_resume:
        page.click("#close-resume")
        page.wait_for_selector("#buttons button:not([disabled])")


def _pixels(png):
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def _large_folders(root, methods=("blur", "jpeg"), size=(1200, 900)):
    """ref/ and method folders of two photographs enlarged to size (w, h): larger than any panel."""
    ref, dirs = make_folders(str(root), methods={m: {"blur": ("blur", 2.0), "jpeg": ("jpeg", 10)}[m] for m in methods},
                             photos=("chelsea", "coffee"))
    for d in [ref, *dirs.values()]:
        for f in os.listdir(d):
            p = os.path.join(d, f)
            Image.open(p).convert("RGB").resize(size, Image.BICUBIC).save(p)
    return ref, dirs


def test_rebuilt_study_on_the_same_port_shows_its_own_images(tmp_path, browser):
    """Serve a study, load its images, stop, delete it, rebuild it in the same folder with the methods
    in another order, serve it on the same port: the same browser must show the new study's images."""
    ref, dirs = make_folders(str(tmp_path / "src"), size=(128, 96))
    folder = str(tmp_path / "study")
    first = init_study(folder, ref, dirs, "acr")
    srv = LiveServer(folder)
    port = srv.port
    ctx, page = _page(browser)
    try:
        _start(page, srv.url, "ann")
        page.evaluate("""urls => Promise.all(urls.map(u => new Promise(res => {
            const i = new Image(); i.onload = i.onerror = res; i.src = u; })))""",
                      [first.stimulus_url(s) for s in first.stimuli])  # every image of study 1 in the cache
        srv.stop()
        shutil.rmtree(folder)
        second = init_study(folder, ref, dict(reversed(list(dirs.items()))), "acr")
        assert not set(second.stimuli) & set(first.stimuli)  # every build draws new ids
        srv = LiveServer(folder, port=port)
        page.reload()
        page.fill("#name", "bob")
        page.keyboard.press("Enter")
        page.wait_for_selector("#resume-box", state="visible")
        page.click("#close-resume")
        for k in range(3):  # three trials, each image compared with the file the new study serves
            page.wait_for_function("n => document.getElementById('progress-text').textContent"
                                   ".startsWith('Image ' + n + ' of')", arg=k + 1)
            page.wait_for_selector("#buttons button:not([disabled])")
            img = page.locator(".viewport img").first
            sid = second.stimulus_at_url(img.get_attribute("src").rsplit("/", 1)[1])
            assert sid is not None
            shown = _pixels(img.screenshot())
            expected = np.asarray(Image.open(second.stimulus_path(sid)).convert("RGB"), dtype=np.int16)
            assert shown.shape == expected.shape and np.abs(shown - expected).max() <= 2, sid
            page.keyboard.press("3")
    finally:
        ctx.close()
        srv.stop()


def test_flicker_moves_nothing(tmp_path, browser):
    study = make_study(tmp_path, "pc", size=(256, 192), show_ref=True, training=1)
    srv = LiveServer(study.folder)
    ctx, page = _page(browser)
    try:
        _start(page, srv.url, "ann")
        assert page.is_visible("#training-badge")
        boxes = lambda: [page.locator(".viewport").nth(k).bounding_box() for k in range(3)]  # noqa: E731
        before_boxes, before = boxes(), _pixels(page.screenshot())
        page.keyboard.down("Space")
        page.wait_for_function("() => !document.getElementById('flicker-note').classList.contains('invisible')")
        held_boxes, held = boxes(), _pixels(page.screenshot())
        page.keyboard.up("Space")
        after = _pixels(page.screenshot())
        assert held_boxes == before_boxes

        def crop(shot, box):
            x, y, w, h = (int(round(box[k])) for k in ("x", "y", "width", "height"))
            return shot[y:y + h, x:x + w]

        ref_box, a_box, b_box = before_boxes
        assert np.array_equal(crop(held, ref_box), crop(before, ref_box))  # the reference stays put
        assert np.array_equal(crop(held, a_box), crop(before, b_box))  # A's panel shows B, pixel for pixel
        assert np.array_equal(crop(held, b_box), crop(before, a_box))
        assert not np.array_equal(crop(before, a_box), crop(before, b_box))  # (they do differ)
        assert np.array_equal(after, before)
    finally:
        ctx.close()
        srv.stop()


def test_eleven_point_answer_bar_never_covers_the_image(tmp_path, browser):
    ref, dirs = _large_folders(tmp_path / "src")
    study = init_study(str(tmp_path / "study"), ref, dirs, "acr", scale=11)
    srv = LiveServer(study.folder)
    ctx, page = _page(browser)
    try:
        _start(page, srv.url, "ann")
        bar, answers = page.locator("#bar").bounding_box(), page.locator("#answers").bounding_box()
        vp = page.locator(".viewport").first.bounding_box()
        assert vp["y"] >= bar["y"] + bar["height"] and vp["y"] + vp["height"] <= answers["y"]
        tops = {round(page.locator("#buttons button").nth(k).bounding_box()["y"]) for k in range(11)}
        assert len(tops) == 1  # the eleven buttons on one row
        hint = page.inner_text("#hint")
        assert "flicker" not in hint.lower() and "together" not in hint and "= for 10" in hint  # one image shown
    finally:
        ctx.close()
        srv.stop()


def test_large_images_start_centred_with_a_cue_and_fit_with_one_key(tmp_path, browser):
    ref, dirs = _large_folders(tmp_path / "src")
    study = init_study(str(tmp_path / "study"), ref, dirs, "pc", show_ref=True)
    srv = LiveServer(study.folder)
    ctx, page = _page(browser)
    try:
        _start(page, srv.url, "ann")
        img, vp = page.locator(".viewport img").nth(1), page.locator(".viewport").nth(1)
        cue = page.locator(".panel-label .zoom").nth(1)

        def rects():
            return img.bounding_box(), vp.bounding_box()

        i, v = rects()
        assert (i["width"], i["height"]) == (1200, 900) and v["width"] < 1200  # native size, larger than its panel
        assert abs(i["x"] + 600 - (v["x"] + v["width"] / 2)) <= 1  # centred
        assert abs(i["y"] + 450 - (v["y"] + v["height"] / 2)) <= 1
        assert "cropped" in cue.inner_text() and "F" in cue.inner_text()
        page.keyboard.press("f")
        i, v = rects()
        assert i["x"] >= v["x"] - 1 and i["y"] >= v["y"] - 1 and i["width"] <= v["width"] + 1 \
            and i["height"] <= v["height"] + 1 and max(i["width"] - v["width"], i["height"] - v["height"]) > -2
        assert "whole image" in cue.inner_text()
        page.keyboard.press("f")
        assert rects()[0]["width"] == 1200  # native size again, one key away
        box = rects()[1]
        page.mouse.move(box["x"] + 20, box["y"] + 20)
        for _ in range(12):  # the wheel zooms out as far as the whole image, no further
            page.mouse.wheel(0, 100)
        i, v = rects()
        assert i["width"] <= v["width"] + 1 and i["height"] <= v["height"] + 1 and "whole image" in cue.inner_text()
        assert "flicker between A and B" in page.inner_text("#hint")
    finally:
        ctx.close()
        srv.stop()


def test_resume_link_is_shown_copied_and_resumes(tmp_path, browser):
    study = make_study(tmp_path, "acr", size=(96, 72), training=1)
    srv = LiveServer(study.folder)
    ctx, page = _page(browser, permissions=["clipboard-read", "clipboard-write"])
    ctx2, page2 = _page(browser)
    ctx3, page3 = _page(browser)
    try:
        _start(page, srv.url, "Carl-Careful", close_resume=False)
        link = page.input_value("#resume-link")
        assert link.startswith(srv.url + "#resume=") and len(link) > len(srv.url) + 20
        page.click("#copy-resume")
        page.wait_for_function("() => document.getElementById('copy-status').textContent.startsWith('Copied')")
        assert page.evaluate("navigator.clipboard.readText()") == link
        page.click("#close-resume")
        page.wait_for_selector("#buttons button:not([disabled])")
        page.keyboard.press("4")
        page.wait_for_function("() => document.getElementById('progress-text').textContent.startsWith('Image 2 ')")
        page.click("#resume-button")  # still there, under "Resume link"
        assert page.is_visible("#resume-box") and page.input_value("#resume-link") == link
        page2.goto(link)  # another browser: the link alone resumes the session where it stopped
        page2.wait_for_function("() => document.getElementById('progress-text').textContent.startsWith('Image 2 ')")
        assert page2.inner_text("#who") == "Carl-Careful" and not page2.is_visible("#resume-box")
        page3.goto(srv.url)  # the same name, other case and spaces: refused, pointing to the link
        page3.fill("#name", "  carl-CAREFUL ")
        page3.keyboard.press("Enter")
        page3.wait_for_selector("#start-error", state="visible")
        assert "Resume link" in page3.inner_text("#start-error")
    finally:
        for c in (ctx, ctx2, ctx3):
            c.close()
        srv.stop()
    store = open_study(study.folder).store()
    try:
        assert [r["name"] for r in store.raters()] == ["Carl-Careful"]
    finally:
        store.close()
