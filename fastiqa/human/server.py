"""`fastiqa human serve`: the rating page and its JSON API (standard library only).

    GET  /                  the page (package data: static/index.html, app.js, app.css)
    GET  /img/<stimulus id> an image, looked up by id in study.json (never a path)
    GET  /api/study         protocol, scale labels, instructions
    POST /api/session       {"name", "token"?} -> {"token", "name"}: starts or resumes a session
    GET  /api/next          (header X-Rater-Token) the rater's next unanswered trial and progress
    POST /api/vote          (header) {"pos", "value", "response_ms", "viewport_w", "viewport_h", "dpr"}
    POST /api/event         (header) {"kind", "data"}: breaks, page events

A vote is accepted only for a trial in the plan of the session whose token comes
with it, with a value of the study's scale; it is on disk (SQLite, synchronous
FULL) before the reply. A vote sent twice (a retry after a lost reply) is stored
once. Binds 127.0.0.1 unless told otherwise; bound to the loopback, it answers
only requests addressed to localhost / 127.0.0.1 (a guard against DNS rebinding).
"""
import json
import mimetypes
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .plan import make_plan
from .study import StudyError, open_study

STATIC = {"/": "index.html", "/index.html": "index.html", "/static/app.js": "app.js", "/static/app.css": "app.css"}
STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
MAX_BODY = 64 * 1024
NAME_RULE = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
EVENT_RULE = re.compile(r"[a-z_]{1,32}")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class StudyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, study_dir, host="127.0.0.1", port=8765, quiet=True):
        self.study = open_study(study_dir)
        self.store = self.study.store()
        self.values = {v for v, _ in self.study.doc["labels"]}
        self.quiet = quiet
        self.loopback = host in LOOPBACK  # then only Host: localhost / 127.0.0.1 is served
        super().__init__((host, port), Handler)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def server_close(self):
        super().server_close()
        self.store.close()


class Handler(BaseHTTPRequestHandler):
    server_version = "fastiqa-human"

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    # --- plumbing -------------------------------------------------------------------
    def _send(self, status, body, ctype="application/json", cache=False):
        data = json.dumps(body).encode() if ctype == "application/json" else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "max-age=86400, immutable" if cache else "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(400, "bad Content-Length") from None
        if n > MAX_BODY:
            raise ApiError(413, "request too large")
        try:
            doc = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            raise ApiError(400, "the body is not JSON") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "the body must be a JSON object")
        return doc

    def _rater(self):
        token = self.headers.get("X-Rater-Token", "")
        rater = self.server.store.rater(token=token) if token else None
        if rater is None:
            raise ApiError(401, "no session with this token; start one from the first page")
        return rater

    def _dispatch(self, routes):
        path = urlsplit(self.path).path
        try:
            if self.server.loopback and urlsplit("//" + self.headers.get("Host", "")).hostname not in LOOPBACK:
                raise ApiError(403, "this study server answers only to localhost (DNS rebinding guard)")
            if path in routes:
                return routes[path]()
            if self.command == "GET" and path in STATIC:
                return self._static(STATIC[path])
            if self.command == "GET" and path.startswith("/img/"):
                return self._image(path[len("/img/"):])
            raise ApiError(404, "not found")
        except ApiError as exc:
            self._send(exc.status, {"error": str(exc)})
        except StudyError as exc:
            self._send(400, {"error": str(exc)})
        except Exception as exc:  # never a dropped connection: the page retries on 5xx
            self.log_error("%s", f"{type(exc).__name__}: {exc}")
            self._send(500, {"error": f"server error ({type(exc).__name__})"})

    def do_GET(self):  # noqa: N802 (http.server's names)
        self._dispatch({"/api/study": self._study, "/api/next": self._next})

    def do_POST(self):  # noqa: N802
        self._dispatch({"/api/session": self._session, "/api/vote": self._vote, "/api/event": self._event})

    # --- content --------------------------------------------------------------------
    def _static(self, name):
        with open(os.path.join(STATIC_DIR, name), "rb") as f:
            data = f.read()
        ctype = {"html": "text/html", "js": "text/javascript", "css": "text/css"}[name.rsplit(".", 1)[1]]
        self._send(200, data, ctype + "; charset=utf-8")

    def _image(self, sid):
        path = self.server.study.stimulus_path(sid)  # a key lookup: no path from the request is opened
        if path is None:
            raise ApiError(404, "no such image")
        with open(path, "rb") as f:
            data = f.read()
        self._send(200, data, mimetypes.guess_type(path)[0] or "application/octet-stream", cache=True)

    def _study(self):
        self._send(200, self.server.study.public())

    # --- sessions and votes ---------------------------------------------------------
    def _session(self):
        body = self._body()
        store = self.server.store
        token = body.get("token")
        if isinstance(token, str) and token:
            rater = store.rater(token=token)
            if rater is not None:
                store.add_event(rater["id"], "resume", {"agent": self.headers.get("User-Agent", "")[:200]})
                return self._send(200, {"token": rater["token"], "name": rater["name"]})
        name = body.get("name")
        if not isinstance(name, str) or not NAME_RULE.fullmatch(name.strip()):
            raise ApiError(400, "give a name or rater id of 1 to 64 printable characters")
        name = name.strip()
        made = store.create_rater(name, make_plan(self.server.study, name))
        if made is None:
            raise ApiError(409, f"the name {name!r} already has a session; resume it in the browser where it "
                                "began (or with its link), or choose another name")
        store.add_event(made[0], "start", {"agent": self.headers.get("User-Agent", "")[:200]})
        self._send(200, {"token": made[1], "name": name})

    def _state(self, rater):
        plan = self.server.store.plan(rater["id"])
        done = self.server.store.answered(rater["id"])
        todo = [k for k in range(len(plan)) if k not in done]
        n_train = sum(t["kind"] == "training" for t in plan)
        state = {"name": rater["name"], "total": len(plan), "answered": len(done), "training_total": n_train,
                 "done": not todo, "trial": None}
        if todo:
            pos = todo[0]
            t = plan[pos]
            stimuli = self.server.study.stimuli
            state["trial"] = {
                "pos": pos, "training": t["kind"] == "training",
                "panels": [{"role": role, "src": f"/img/{sid}", "width": stimuli[sid]["width"],
                            "height": stimuli[sid]["height"]} for role, sid in zip(t["roles"], t["stimuli"])],
            }
        return state

    def _next(self):
        self._send(200, self._state(self._rater()))

    def _vote(self):
        rater = self._rater()
        body = self._body()
        pos, value = body.get("pos"), body.get("value")
        n = len(self.server.store.plan(rater["id"]))
        if not isinstance(pos, int) or isinstance(pos, bool) or not 0 <= pos < n:
            raise ApiError(400, f"pos must be a trial of this session (0..{n - 1}), got {pos!r}")
        if not isinstance(value, int) or isinstance(value, bool) or value not in self.server.values:
            raise ApiError(400, f"value must be one of {sorted(self.server.values)}, got {value!r}")

        def num(key, kind, lo, hi):
            v = body.get(key)
            return kind(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi else None

        stored = self.server.store.add_vote(rater["id"], pos, value, num("response_ms", float, 0, 1e9),
                                            num("viewport_w", int, 0, 1e5), num("viewport_h", int, 0, 1e5),
                                            num("dpr", float, 0, 100))
        self._send(200, dict(self._state(rater), stored=stored))

    def _event(self):
        rater = self._rater()
        body = self._body()
        kind = body.get("kind")
        if not isinstance(kind, str) or not EVENT_RULE.fullmatch(kind):
            raise ApiError(400, f"event kind must be 1 to 32 of a-z and _, got {kind!r}")
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        self.server.store.add_event(rater["id"], kind, data)
        self._send(200, {"ok": True})


def make_server(study_dir, host="127.0.0.1", port=8765, quiet=True):
    """A StudyServer bound and ready (port 0: any free port); call serve_forever()."""
    return StudyServer(study_dir, host, port, quiet)


def serve(study_dir, host="127.0.0.1", port=8765, quiet=False):
    server = make_server(study_dir, host, port, quiet=True)
    if not quiet:
        print(f"fastiqa human: serving {study_dir!r} ({server.study.protocol}, {len(server.study.stimuli)} stimuli) "
              f"at {server.url}  (Ctrl+C stops; votes are saved as they come)", flush=True)
        if host not in LOOPBACK:
            print("fastiqa human: listening beyond this machine: anyone who can reach it can rate", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
