"""The rating page in a real browser (Debian's chromium driven by Playwright):
keyboard and mouse answers, a reload mid-study, the server killed and restarted
(with an answer given while it is down), a second rater in parallel, then every
vote in the database exactly once. Screenshots of the rating page are kept under
tests/artifacts/ (printed at the end of the test).

Needs `pip install playwright` and /usr/bin/chromium (`apt-get install chromium`);
never `playwright install`. Skips with the reason when either is missing.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from _human_support import make_study

CHROMIUM = os.environ.get("FASTIQA_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = os.path.join(os.path.dirname(__file__), "artifacts")

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`python -m fastiqa human serve` in a subprocess, so that it can be killed for real."""

    def __init__(self, study_dir, port):
        self.study_dir, self.port, self.proc = study_dir, port, None
        self.url = f"http://127.0.0.1:{port}/"

    def start(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "fastiqa", "human", "serve", self.study_dir,
                                      "--port", str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.proc.stdout.read().decode())
            try:
                urllib.request.urlopen(self.url + "api/study", timeout=2).read()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("server did not start within 120 s")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


class Rater:
    """One browser context (its own localStorage) rating the study."""

    def __init__(self, browser, url, name, protocol, query=""):
        self.ctx = browser.new_context(viewport={"width": 1280, "height": 860})
        self.page = self.ctx.new_page()
        self.page.set_default_timeout(60000)
        self.name, self.protocol, self.answered = name, protocol, 0
        self.page.goto(url + query)
        self.page.fill("#name", name)
        self.page.keyboard.press("Enter")
        self.page.wait_for_selector("#resume-box", state="visible")  # a new session shows its resume link once
        self.page.click("#close-resume")
        self.total = None
        self.by_key = {"key": 0, "mouse": 0}

    def wait_ready(self):
        self.page.wait_for_function(
            "n => document.getElementById('progress-text').textContent.startsWith('Image ' + n + ' of')",
            arg=self.answered + 1)
        self.page.wait_for_function("() => !document.getElementById('break').hidden"
                                    " || document.querySelector('#buttons button:not([disabled])')")
        if self.page.is_visible("#break"):
            self.page.click("#break-button")
        self.page.wait_for_selector("#buttons button:not([disabled])")
        if self.total is None:
            self.total = int(self.page.inner_text("#progress-text").split(" of ")[1])

    def answer(self, how):
        self.wait_ready()
        if how == "key":
            self.page.keyboard.press("ArrowLeft" if self.protocol == "pc" else "4")
        else:
            self.page.click("#buttons button:nth-child(2)")  # ACR: "Good" (best first); PC: "B is better"
        self.by_key[how] += 1
        self.answered += 1

    def done(self):
        return self.total is not None and self.answered >= self.total


def _votes(study):
    store = study.store()
    try:
        return store.votes(), store.events()
    finally:
        store.close()


@pytest.mark.parametrize("protocol", ["acr", "pc"])
def test_browser_rating_session_end_to_end(tmp_path, protocol):
    study = make_study(tmp_path, protocol, size=(256, 256), gold=2, training=1, title="Image quality study",
                       **({"show_ref": True} if protocol == "pc" else {}))
    server = ServerProcess(study.folder, _free_port())
    server.start()
    os.makedirs(ARTIFACTS, exist_ok=True)
    shots = []
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            ann = Rater(browser, server.url, "ann", protocol)
            bob = Rater(browser, server.url, "bob", protocol, query="?break_after=0")  # break prompt every trial
            ann.answer("key")
            ann.wait_ready()
            shot = os.path.join(ARTIFACTS, f"human_rating_page_{protocol}.png")
            ann.page.screenshot(path=shot)
            shots.append(shot)
            if protocol == "pc":  # flicker and synchronised zoom
                imgs = ann.page.locator(".viewport img")
                a_src, b_src = imgs.nth(1).get_attribute("src"), imgs.nth(2).get_attribute("src")
                ann.page.keyboard.down("Space")
                assert imgs.nth(1).get_attribute("src") == b_src and imgs.nth(2).get_attribute("src") == a_src
                ann.page.keyboard.up("Space")
                assert imgs.nth(1).get_attribute("src") == a_src
                box = ann.page.locator(".viewport").nth(1).bounding_box()
                ann.page.mouse.move(box["x"] + 50, box["y"] + 50)
                ann.page.mouse.wheel(0, -100)
                transforms = {imgs.nth(k).evaluate("e => e.style.transform") for k in range(3)}
                assert len(transforms) == 1 and "scale(1.25)" in transforms.pop()
            step = 0
            while not ann.done():
                ann.answer("key" if step % 2 else "mouse")
                if not bob.done():
                    bob.answer("mouse" if step % 2 else "key")
                step += 1
                if step == 3:  # reload mid-study: the page resumes where it stopped
                    ann.page.reload()
                if step == 5 and not ann.done():  # kill the server, answer while it is down, restart it
                    server.kill()
                    ann.wait_ready()
                    ann.page.click("#buttons button:nth-child(1)")
                    ann.by_key["mouse"] += 1
                    ann.answered += 1
                    ann.page.wait_for_selector("#banner", state="visible")
                    server.start()
            while not bob.done():
                bob.answer("key")
            for r in (ann, bob):
                r.page.wait_for_selector("#done", state="visible")
            bob_shot = os.path.join(ARTIFACTS, f"human_done_page_{protocol}.png")
            bob.page.screenshot(path=bob_shot)
            shots.append(bob_shot)
            browser.close()
    finally:
        server.stop()
    votes, events = _votes(study)
    for r in (ann, bob):
        mine = [v for v in votes if v["rater"] == r.name]
        assert sorted(v["pos"] for v in mine) == list(range(r.total)), r.name  # every trial, exactly once
        assert all(v["viewport_w"] == 1280 and v["dpr"] == 1 and v["response_ms"] > 0 for v in mine)
    kinds = {(e["rater_id"], e["kind"]) for e in events}
    assert any(k == "resume" for _, k in kinds) and any(k == "break_prompt" for _, k in kinds)
    ann_values = [v["value"] for v in votes if v["rater"] == "ann"]
    if protocol == "acr":  # keys gave 4, the second button ("Good") 4, the first ("Excellent") 5
        assert ann_values.count(5) == 1 and ann_values.count(4) == ann.total - 1
    print("\nscreenshots kept:", *shots, sep="\n  ")
    docs_dir = os.environ.get("FASTIQA_HUMAN_DOCS")  # refresh the README images on request
    if docs_dir:
        shutil.copy(shots[0], os.path.join(docs_dir, f"human_rating_page_{protocol}.png"))
