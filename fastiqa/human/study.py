"""A rating study on disk: `fastiqa human init`.

The study folder is the whole state: study.json (protocol, scale, labels,
instructions, stimuli with content hashes), stimuli/ (copies of the images, so
the folder can be moved or archived) and votes.sqlite (fastiqa.human.store).

Stimulus ids are random (16 hex digits drawn at init), so the image URLs
(/img/<id>) differ from one build of a study to the next, even in the same folder
on the same port (a browser's cache never shows another study's image), and an
id says nothing about the image's content or method. Studies of format 1
(sequential ids s0000...) are served under ids derived from a hash of the study.

Images are paired by name exactly as `fastiqa eval` pairs them
(fastiqa.evaluation.pairing.pair_files: reference NAME.ext with NAME<suffix>.ext2).
"""
import datetime
import hashlib
import json
import os
import re
import secrets
import shutil

import numpy as np
from PIL import Image

from .._imageio import ImageReadError, read_image
from .._version import __version__
from ..evaluation import UsageError
from ..evaluation.pairing import pair_files
from .errors import StudyError
from .store import Store

PROTOCOLS = ("acr", "acr-hr", "dcr", "pc")
SCALES = {"acr": (5, 9, 11), "acr-hr": (5, 9, 11), "dcr": (5,), "pc": (2,)}
REFERENCE = "reference"  # method name of the hidden reference (ACR-HR) and of gold hidden-reference trials
STUDY_FILE = "study.json"
BROWSER_FORMATS = (".png", ".jpg", ".jpeg", ".bmp")  # served as they are; others are converted to PNG
STUDY_FORMAT = 2  # 2: random stimulus ids and a study id; 1: sequential ids
DEFAULT_TITLE = "Image quality study"

ACR5 = ["Bad", "Poor", "Fair", "Good", "Excellent"]  # values 1..5 (ITU-T P.910 / BT.500)
DCR5 = ["Very annoying", "Annoying", "Slightly annoying", "Perceptible but not annoying", "Imperceptible"]

INSTRUCTIONS = {
    "acr": "You will see one image at a time. Rate its overall quality on the scale below. "
           "Look at the whole image; there are no right or wrong answers.",
    "dcr": "You will see the reference image (left) and a processed version (right). "
           "Rate how much the processing degrades the image compared with the reference.",
    "pc": "You will see two versions of the same image side by side. Choose the one of better quality. "
          "If they look the same to you, pick the one you would rather keep.",
}


def keys_help(protocol, scale, show_ref=False):
    """The key hints of the rating page: only what works with what the protocol shows."""
    if protocol == "pc":
        keys, n = "\u2190 / \u2192 (or 1 / 2) choose A / B", 3 if show_ref else 2
        flicker = "hold Space to flicker between A and B"
    else:
        top = max(v for v, _ in scale_labels(protocol, scale))
        keys = "the number keys answer" + (" (= for 10)" if top == 10 else "")
        n = 2 if protocol == "dcr" else 1
        flicker = "hold Space to flicker between the reference and the processed image" if n == 2 else ""
    view = ("mouse wheel zooms, drag pans" + (" (all images together)" if n > 1 else "")
            + ", F switches between the whole image and native size, R resets the view")
    return "Keys: " + " \u00b7 ".join(x for x in (keys, flicker, view) if x) + "."


def scale_labels(protocol, scale):
    """[(value, label)] from worst to best."""
    if protocol == "pc":
        return [(0, "A is better"), (1, "B is better")]  # A on the left, B on the right
    if protocol == "dcr":
        return list(zip(range(1, 6), DCR5))
    if scale == 5:
        return list(zip(range(1, 6), ACR5))
    if scale == 9:  # ACR-9: the five labels at 1, 3, 5, 7, 9 (P.910 Figure 4)
        return [(v, ACR5[(v - 1) // 2] if v % 2 else "") for v in range(1, 10)]
    return [(v, {0: "Bad", 5: "Fair", 10: "Excellent"}.get(v, "")) for v in range(0, 11)]  # ACR-11: 0..10


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _copy_for_browser(src, dst_base):
    """Copy src as dst_base.<ext>; TIFF, which browsers do not show, becomes an 8-bit PNG.
    Returns the path relative to the study folder."""
    ext = os.path.splitext(src)[1].lower()
    if ext in BROWSER_FORMATS:
        shutil.copyfile(src, dst_base + ext)
    else:
        arr, full = read_image(src)
        if full != 255:  # 16-bit: the display shows 8 bits anyway
            arr = np.round(arr.astype(np.float64) * (255.0 / full)).astype(np.uint8)
        Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(dst_base + ".png")
        ext = ".png"
    return f"stimuli/{os.path.basename(dst_base)}{ext}"


def _check_args(protocol, scale, methods, repeats, gold, training, show_ref=False):
    if protocol not in PROTOCOLS:
        raise StudyError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if protocol == "pc":
        scale = 2
    elif protocol == "dcr" and scale is None:
        scale = 5
    scale = 5 if scale is None else scale
    if scale not in SCALES[protocol]:
        raise StudyError(f"--scale {scale} is not offered for {protocol}; "
                         f"use {' or '.join(map(str, SCALES[protocol]))}")
    if not methods:
        raise StudyError("no --method given; use --method NAME=DIR (once per method)")
    for name in methods:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name) or name == REFERENCE:
            raise StudyError(f"method name {name!r} must be letters, digits, _ . + - and not {REFERENCE!r}")
    if show_ref and protocol in ("acr", "acr-hr"):
        raise StudyError(f"--show-ref is for pc (the reference next to the two images); {protocol} shows one "
                         "image at a time and dcr always shows the reference")
    if protocol == "pc" and len(methods) < 2:
        raise StudyError(f"protocol pc compares methods two by two: it needs at least two --method, got {len(methods)}")
    for what, v in (("repeats", repeats), ("gold", gold), ("training", training)):
        if not isinstance(v, int) or v < (1 if what == "repeats" else 0):
            raise StudyError(f"--{what} must be an integer >= {1 if what == 'repeats' else 0}, got {v!r}")
    return scale


def _pair_all(ref_dir, methods, suffix):
    """{content: {method: path}} with REFERENCE included, and the problems found."""
    if not os.path.isdir(ref_dir):
        raise StudyError(f"--ref {ref_dir!r} is not a folder")
    table, errors = {}, []
    for name, folder in methods.items():
        if not os.path.isdir(folder):
            errors.append(f"--method {name}={folder}: not a folder")
            continue
        try:
            pairs, errs = pair_files(ref_dir, folder, suffix)
        except UsageError as exc:
            errors.append(f"--method {name}={folder}: {exc}")
            continue
        errors += [f"method {name}: {e}" for e in errs]
        for stem, ref_path, path in pairs:
            table.setdefault(stem, {REFERENCE: ref_path})[name] = path
    for stem, row in sorted(table.items()):
        missing = [m for m in methods if m not in row]
        if missing and not errors:
            errors.append(f"{stem}: no image from method(s) {', '.join(missing)}")
    return table, errors


def _read_sizes(table):
    sizes, errors = {}, []
    for stem, row in sorted(table.items()):
        shapes = {}
        for method, path in row.items():
            try:
                arr, _ = read_image(path)
            except ImageReadError as exc:
                errors.append(f"{path}: {exc}")
                continue
            shapes[method] = arr.shape
        ref_shape = shapes.get(REFERENCE)
        for method, shape in shapes.items():
            if ref_shape is not None and shape[:2] != ref_shape[:2]:
                errors.append(f"{stem}: size mismatch, reference {ref_shape[1]}x{ref_shape[0]} vs method "
                              f"{method} {shape[1]}x{shape[0]} (WxH)")
        if ref_shape is not None:
            sizes[stem] = (int(ref_shape[1]), int(ref_shape[0]))
    return sizes, errors


def init_study(study_dir, ref_dir, methods, protocol="acr", scale=None, repeats=1, gold=0, training=0,
               seed=0, suffix="", show_ref=False, instructions=None, title=None):
    """Build a study in the new folder study_dir; returns the Study. methods: {name: folder}.
    Raises StudyError listing every problem (nothing is written then)."""
    methods = dict(methods)
    scale = _check_args(protocol, scale, methods, repeats, gold, training, show_ref)
    if os.path.exists(study_dir) and (not os.path.isdir(study_dir) or os.listdir(study_dir)):
        raise StudyError(f"{study_dir!r} already exists and is not empty; a study goes into a new folder")
    table, errors = _pair_all(ref_dir, methods, suffix)
    if not errors and not table:
        errors.append(f"no image of --ref {ref_dir!r} pairs with every method")
    if not errors:
        sizes, errors = _read_sizes(table)
    if errors:
        raise StudyError("\n".join(errors))
    os.makedirs(os.path.join(study_dir, "stimuli"), exist_ok=True)
    stimuli = {}
    for stem in sorted(table):
        for method in [REFERENCE, *methods]:
            src = table[stem][method]
            sid = _new_id(stimuli)  # random: the URL /img/<id> is new with every build and tells nothing
            rel = _copy_for_browser(src, os.path.join(study_dir, "stimuli", sid))
            stimuli[sid] = {"content": stem, "method": method, "file": rel, "sha256": _sha256(src),
                            "file_sha256": _sha256(os.path.join(study_dir, rel)),
                            "source": os.path.abspath(src), "width": sizes[stem][0], "height": sizes[stem][1]}
    stimuli = dict(sorted(stimuli.items()))  # nor does the order in study.json
    doc = {
        "format": STUDY_FORMAT, "fastiqa_version": __version__, "study_id": secrets.token_hex(8),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "title": title or DEFAULT_TITLE,
        "protocol": protocol, "scale": scale, "labels": scale_labels(protocol, scale),
        "instructions": instructions or INSTRUCTIONS["acr" if protocol == "acr-hr" else protocol],
        "seed": int(seed), "repeats": repeats, "gold": gold, "training": training,
        "show_ref": bool(show_ref or protocol == "dcr"), "suffix": suffix,
        "reference_dir": os.path.abspath(ref_dir),
        "methods": [{"name": n, "dir": os.path.abspath(d)} for n, d in methods.items()],
        "contents": sorted(table), "stimuli": stimuli,
    }
    with open(os.path.join(study_dir, STUDY_FILE), "w") as f:
        json.dump(doc, f, indent=1)
    study = open_study(study_dir)
    study.store().close()  # creates votes.sqlite with its schema
    return study


def _new_id(taken):
    while True:
        sid = secrets.token_hex(8)
        if sid not in taken:
            return sid


def open_study(study_dir, verify=True):
    path = os.path.join(study_dir, STUDY_FILE)
    if not os.path.isfile(path):
        raise StudyError(f"{study_dir!r} is not a study (no {STUDY_FILE}); make one with `fastiqa human init`")
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        raise StudyError(f"{path}: unreadable ({exc})") from None
    if doc.get("format", 0) > STUDY_FORMAT:
        raise StudyError(f"{path} was written by a newer fastiqa (study format {doc.get('format')} > "
                         f"{STUDY_FORMAT}, fastiqa {doc.get('fastiqa_version')}); upgrade fastiqa to open it")
    study = Study(study_dir, doc)
    if verify:
        study.verify()
    return study


class Study:
    """An opened study folder: its description (study.json) and its stimuli."""

    def __init__(self, folder, doc):
        self.folder, self.doc = folder, doc
        self.protocol, self.scale = doc["protocol"], doc["scale"]
        self.stimuli = doc["stimuli"]
        self.methods = [m["name"] for m in doc["methods"]]
        self.contents = doc["contents"]
        self._by = {(s["content"], s["method"]): sid for sid, s in self.stimuli.items()}
        if "study_id" in doc:
            self.study_id = doc["study_id"]
            self.url_ids = {sid: sid for sid in self.stimuli}
        else:  # format 1: sequential ids, served under ids hashed from this build of the study
            build = json.dumps([doc.get("created"), doc.get("seed"), sorted(
                (sid, s["file_sha256"] if "file_sha256" in s else s["sha256"]) for sid, s in self.stimuli.items())])
            self.study_id = hashlib.sha256(build.encode()).hexdigest()[:16]
            self.url_ids = {sid: hashlib.sha256(f"{self.study_id}/{sid}".encode()).hexdigest()[:16]
                            for sid in self.stimuli}
        self._by_url = {u: sid for sid, u in self.url_ids.items()}

    def stimulus(self, content, method):
        return self._by[(content, method)]

    def stimulus_path(self, sid):
        """Path of stimulus sid (a key of study.json, never a path from a request) or None."""
        s = self.stimuli.get(sid) if isinstance(sid, str) else None
        return None if s is None else os.path.join(self.folder, s["file"])

    def stimulus_url(self, sid):
        """The URL path the rating page loads stimulus sid from."""
        return f"/img/{self.url_ids[sid]}"

    def stimulus_at_url(self, url_id):
        """The stimulus id served as /img/<url_id>, or None (a dictionary key lookup)."""
        return self._by_url.get(url_id) if isinstance(url_id, str) else None

    def verify(self):
        """Every stimulus file is there with its recorded content hash."""
        for sid, s in self.stimuli.items():
            path = os.path.join(self.folder, s["file"])
            if not os.path.isfile(path):
                raise StudyError(f"{path}: stimulus {sid} is missing from the study folder")
            if _sha256(path) != s.get("file_sha256", s["sha256"]):
                raise StudyError(f"{path}: stimulus {sid} was changed after `fastiqa human init` "
                                 "(content hash differs); rebuild the study")

    def store(self):
        return Store(os.path.join(self.folder, "votes.sqlite"))

    def rated_methods(self):
        """Methods rated as test stimuli (ACR-HR adds the hidden reference)."""
        return ([REFERENCE] if self.protocol == "acr-hr" else []) + self.methods

    def public(self):
        """What the rating page needs to know (no paths, no hashes)."""
        d = self.doc
        out = {k: d[k] for k in ("title", "protocol", "scale", "labels", "instructions", "show_ref")}
        return dict(out, study_id=self.study_id, keys_help=keys_help(self.protocol, self.scale, d["show_ref"]))
