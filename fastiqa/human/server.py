"""`fastiqa human serve`: the rating page and its JSON API (standard library only).

    GET  /                  the page (package data: static/index.html, app.js, app.css)
    GET  /img/<url id>      an image, looked up by its random id in study.json (never a path)
    GET  /api/study         study id, protocol, scale labels, instructions, key hints
    POST /api/session       {"name", "token"?} -> {"token", "name"}: starts or resumes a session
    GET  /api/next          (header X-Rater-Token) the rater's next unanswered trial and progress
    POST /api/vote          (header) {"pos", "value", "response_ms", "viewport_w", "viewport_h", "dpr"}
    POST /api/event         (header) {"kind", "data"}: breaks, page events

A vote is accepted only for the next unanswered trial of the session whose token
comes with it (a retry of an answered one is stored once: "stored": false), with a
value of the study's scale; it is on disk (SQLite, synchronous FULL) before the
reply. Names are matched trimmed and case-folded (fastiqa.human.store.name_key).
Binds 127.0.0.1 unless told otherwise; bound to the loopback, it answers only
requests addressed to localhost / 127.0.0.1 (a guard against DNS rebinding).

Limits (a bad request gets a 4xx and a JSON {"error"}, never a 500):
  - a POST needs a Content-Length of 0..MAX_BODY bytes: missing -> 411, negative or
    not a number -> 400, larger -> 413, all answered without reading the body;
    chunked bodies -> 411; malformed, non-object or too deeply nested JSON -> 400;
  - a malformed Host header or URL -> 400; methods other than GET / POST -> 405;
  - one request per connection (HTTP/1.0); every read and write on a connection times
    out after TIMEOUT_S seconds of silence; at most MAX_CONNECTIONS connections at once
    (more are closed at once);
  - at most max_raters sessions per study (`--max-raters`, default MAX_RATERS),
    event data of at most MAX_EVENT_BYTES, at most MAX_EVENTS events per session;
    beyond either -> 429.
"""
import json
import mimetypes
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .errors import LimitError, OrderError, StudyError
from .plan import make_plan
from .store import clean_name
from .study import open_study

STATIC = {"/": "index.html", "/index.html": "index.html", "/static/app.js": "app.js", "/static/app.css": "app.css"}
STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
MAX_BODY = 16 * 1024  # the page's largest request is well under 1 kB
MAX_EVENT_BYTES = 2048  # an event's data, as JSON
MAX_EVENTS = 1000  # events per session (break prompts, page events; the server's own start / resume included)
MAX_RATERS = 200  # sessions per study unless --max-raters says otherwise
MAX_CONNECTIONS = 64
TIMEOUT_S = 30.0
NAME_MAX = 64
EVENT_RULE = re.compile(r"[a-z_]{1,32}")
LENGTH_RULE = re.compile(r"[0-9]{1,12}")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class StudyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, study_dir, host="127.0.0.1", port=8765, quiet=True, max_raters=MAX_RATERS,
                 timeout_s=TIMEOUT_S, max_connections=MAX_CONNECTIONS):
        if not isinstance(max_raters, int) or isinstance(max_raters, bool) or max_raters < 1:
            raise StudyError(f"--max-raters must be an integer >= 1, got {max_raters!r}")
        self.study = open_study(study_dir)
        self.store = self.study.store()
        self.values = {v for v, _ in self.study.doc["labels"]}
        self.quiet = quiet
        self.max_raters, self.timeout_s = max_raters, timeout_s
        self._slots = threading.BoundedSemaphore(max_connections)
        self.loopback = host in LOOPBACK  # then only Host: localhost / 127.0.0.1 is served
        super().__init__((host, port), Handler)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):  # too many connections: close this one at once
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def server_close(self):
        super().server_close()
        self.store.close()


def _hostname(value):
    """The host name of a Host header, None when it has none; ValueError when malformed."""
    if not value:
        return None
    if any(c in value for c in "/?#@\\ \t") or not value.isprintable():
        raise ValueError(value)
    parts = urlsplit("//" + value)
    parts.port  # noqa: B018 (ValueError on a port that is not one)
    return parts.hostname  # ValueError on "[" and other broken forms


class Handler(BaseHTTPRequestHandler):
    server_version = "fastiqa-human"

    def setup(self):
        self.timeout = self.server.timeout_s  # socket timeout of every read and write
        super().setup()

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    # --- plumbing -------------------------------------------------------------------
    def _send(self, status, body, ctype="application/json", cache=False, headers=()):
        data = json.dumps(body).encode() if ctype == "application/json" else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "max-age=86400, immutable" if cache else "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in headers:
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _length(self):
        """The request's Content-Length (0 when it has no body); ApiError when missing or invalid."""
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(411, "send the body with a Content-Length (chunked bodies are not accepted)")
        values = self.headers.get_all("Content-Length") or []
        if not values:
            if self.command == "POST":
                raise ApiError(411, "a POST needs a Content-Length")
            return 0
        if len(set(v.strip() for v in values)) != 1 or not LENGTH_RULE.fullmatch(values[0].strip()):
            raise ApiError(400, f"bad Content-Length {values[0]!r}: it must be one number of bytes, 0 or more")
        n = int(values[0].strip())
        if n > MAX_BODY:
            raise ApiError(413, f"request too large ({n} bytes; at most {MAX_BODY})")
        return n

    def _body(self):
        n = self._length()
        try:
            raw = self.rfile.read(n)
        except (TimeoutError, OSError):
            raise ApiError(408, "the request body did not arrive in time") from None
        if len(raw) < n:
            raise ApiError(400, "the body is shorter than its Content-Length")
        self._read_body = True
        try:
            doc = json.loads(raw or b"{}")
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
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
        self._read_body = False
        try:
            try:
                path = urlsplit(self.path).path
            except ValueError:
                raise ApiError(400, "malformed URL") from None
            try:
                hosts = self.headers.get_all("Host") or []
                if len(hosts) > 1:
                    raise ValueError(hosts)
                hostname = _hostname(hosts[0] if hosts else None)
            except ValueError:
                raise ApiError(400, "malformed Host header") from None
            if self.server.loopback and hostname not in LOOPBACK:
                raise ApiError(403, "this study server answers only to localhost (DNS rebinding guard)")
            if self.command == "GET" and self._length():
                self.close_connection = True  # a GET with a body: the body is not read, so the connection ends
            if path in routes:
                return routes[path]()
            if self.command == "GET" and path in STATIC:
                return self._static(STATIC[path])
            if self.command == "GET" and path.startswith("/img/"):
                return self._image(path[len("/img/"):])
            raise ApiError(404, "not found")
        except ApiError as exc:
            self._fail(exc.status, str(exc))
        except LimitError as exc:
            self._fail(429, str(exc))
        except OrderError as exc:
            self._fail(409, str(exc))
        except StudyError as exc:
            self._fail(400, str(exc))
        except Exception as exc:  # a bug: never a dropped connection (the page retries on 5xx)
            self.log_error("%s", f"{type(exc).__name__}: {exc}")
            self._fail(500, f"server error ({type(exc).__name__})")

    def _fail(self, status, message):
        if self.command == "POST" and not self._read_body:
            self.close_connection = True  # the unread body must not be taken for the next request
        headers = [("Allow", "GET, POST")] if status == 405 else []
        self._send(status, {"error": message}, headers=headers)

    def do_GET(self):  # noqa: N802 (http.server's names)
        self._dispatch({"/api/study": self._study, "/api/next": self._next})

    def do_POST(self):  # noqa: N802
        self._dispatch({"/api/session": self._session, "/api/vote": self._vote, "/api/event": self._event})

    def _not_allowed(self):
        self._read_body = False
        self.close_connection = True
        self._fail(405, f"method {self.command} is not allowed (GET and POST are)")

    do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed  # noqa: N815

    # --- content --------------------------------------------------------------------
    def _static(self, name):
        with open(os.path.join(STATIC_DIR, name), "rb") as f:
            data = f.read()
        ctype = {"html": "text/html", "js": "text/javascript", "css": "text/css"}[name.rsplit(".", 1)[1]]
        self._send(200, data, ctype + "; charset=utf-8")

    def _image(self, url_id):
        sid = self.server.study.stimulus_at_url(url_id)  # a key lookup: no path from the request is opened
        if sid is None:
            raise ApiError(404, "no such image")
        path = self.server.study.stimulus_path(sid)
        with open(path, "rb") as f:
            data = f.read()
        # the id is random per build of the study: a cached copy is always this study's image
        self._send(200, data, mimetypes.guess_type(path)[0] or "application/octet-stream", cache=True)

    def _study(self):
        self._send(200, self.server.study.public())

    # --- sessions and votes ---------------------------------------------------------
    def _agent(self):
        return {"agent": self.headers.get("User-Agent", "")[:200]}

    def _session(self):
        body = self._body()
        store = self.server.store
        token = body.get("token")
        if isinstance(token, str) and token:
            rater = store.rater(token=token)
            if rater is not None:
                try:
                    store.add_event(rater["id"], "resume", self._agent(), max_events=MAX_EVENTS)
                except LimitError:
                    pass  # resuming works whatever the event log holds
                return self._send(200, {"token": rater["token"], "name": rater["name"]})
        name = body.get("name")
        name = clean_name(name) if isinstance(name, str) else ""
        if not 1 <= len(name) <= NAME_MAX or not name.isprintable():
            raise ApiError(400, f"give a name or rater id of 1 to {NAME_MAX} printable characters")
        made = store.create_rater(name, make_plan(self.server.study, name), max_raters=self.server.max_raters)
        if made is None:
            raise ApiError(409, f"the name {name!r} already has a session (names are matched ignoring case and "
                                "extra spaces); resume it in the browser where it began, or with the resume link "
                                "shown there (\u201cResume link\u201d at the top of the page), or choose another name")
        store.add_event(made[0], "start", self._agent())
        self._send(200, {"token": made[1], "name": name})

    def _state(self, rater):
        store, study = self.server.store, self.server.study
        plan = store.plan(rater["id"])
        pos = store.next_pos(rater["id"])
        answered = len(plan) if pos is None else len(store.answered(rater["id"]))
        n_train = sum(t["kind"] == "training" for t in plan)
        state = {"name": rater["name"], "total": len(plan), "answered": answered, "training_total": n_train,
                 "done": pos is None, "trial": None}
        if pos is not None:
            t = plan[pos]
            state["trial"] = {
                "pos": pos, "training": t["kind"] == "training",
                "panels": [{"role": role, "src": study.stimulus_url(sid), "width": study.stimuli[sid]["width"],
                            "height": study.stimuli[sid]["height"]} for role, sid in zip(t["roles"], t["stimuli"])],
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
        size = len(json.dumps(data).encode())
        if size > MAX_EVENT_BYTES:
            raise ApiError(413, f"event data too large ({size} bytes as JSON; at most {MAX_EVENT_BYTES})")
        self.server.store.add_event(rater["id"], kind, data, max_events=MAX_EVENTS)
        self._send(200, {"ok": True})


def make_server(study_dir, host="127.0.0.1", port=8765, quiet=True, **limits):
    """A StudyServer bound and ready (port 0: any free port); call serve_forever().
    limits: max_raters, timeout_s, max_connections."""
    return StudyServer(study_dir, host, port, quiet, **limits)


def serve(study_dir, host="127.0.0.1", port=8765, quiet=False, max_raters=MAX_RATERS):
    server = make_server(study_dir, host, port, quiet=True, max_raters=max_raters)
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


__all__ = ["make_server", "serve", "StudyServer", "MAX_BODY", "MAX_EVENT_BYTES", "MAX_EVENTS", "MAX_RATERS",
           "MAX_CONNECTIONS", "TIMEOUT_S"]
