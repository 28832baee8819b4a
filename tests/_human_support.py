"""Helpers of the human-assessment tests: method folders made from the shipped
photographs (blur, noise, JPEG), study building, simulated raters, a live server."""
import threading

import numpy as np

from fastiqa.human import init_study
from fastiqa.human.example import PHOTOS, write_example_folders
from fastiqa.human.plan import make_plan
from fastiqa.human.server import make_server


def make_folders(root, size=(96, 72), methods=None, photos=PHOTOS, suffix=""):
    """root/ref and root/<method>/: the shipped photographs cropped to size (w, h) and degraded."""
    return write_example_folders(root, methods=methods, photos=photos, size=size, suffix=suffix)


def make_study(tmp_path, protocol="acr", **kw):
    ref, dirs = make_folders(str(tmp_path / "src"), **{k: kw.pop(k) for k in ("size", "methods", "photos") if k in kw})
    return init_study(str(tmp_path / "study"), ref, dirs, protocol=protocol, **kw)


class LiveServer:
    """A StudyServer on a free port in a background thread."""

    def __init__(self, study_dir, port=0):
        self.server = make_server(study_dir, port=port)
        self.url = self.server.url
        self.port = self.server.server_address[1]
        # a short poll: shutdown() waits up to one poll interval (0.5 s by default, per test)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def simulate_votes(study, raters, truth, rng):
    """Writes votes straight into the store. raters: {name: (bias, noise) or 'random'};
    truth: {(content, method): true score on the scale}. Returns the store's votes."""
    lo, hi = study.doc["labels"][0][0], study.doc["labels"][-1][0]
    store = study.store()
    try:
        for name, model in raters.items():
            plan = make_plan(study, name)
            rid, _ = store.create_rater(name, plan)
            for pos, t in enumerate(plan):
                if study.protocol == "pc":
                    ia, ib = t["roles"].index("A"), t["roles"].index("B")
                    qa, qb = truth[(t["content"], t["methods"][ia])], truth[(t["content"], t["methods"][ib])]
                    if model == "random":
                        v = int(rng.integers(0, 2))
                    else:
                        v = 0 if qa + model[1] * rng.normal() > qb + model[1] * rng.normal() else 1
                else:
                    method = t["methods"][t["roles"].index("test")]
                    if model == "random":
                        v = int(rng.integers(lo, hi + 1))
                    else:
                        v = int(np.clip(np.round(truth[(t["content"], method)] + model[0] + model[1] * rng.normal()),
                                        lo, hi))
                store.add_vote(rid, pos, v, 1000.0, 1280, 800, 1.0)
        return store.votes()
    finally:
        store.close()
