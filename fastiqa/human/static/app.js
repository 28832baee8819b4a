// fastiqa human: the rating page. No dependencies; talks to fastiqa.human.server.
// Every answer is sent at once and kept in localStorage until the server has stored it,
// so a reload, a closed tab or a restarted server loses nothing.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const BREAK_AFTER_S = Number(params.get("break_after") || 30 * 60);  // break prompt after 30 minutes
  let study = null, token = null, trial = null, ready = false, busy = false, shownAt = 0;
  let sessionStart = performance.now(), breakShown = false;
  let view = { s: 1, x: 0, y: 0 };  // shared zoom / pan of every panel (s = 1: one image pixel per device pixel)
  let geom = null;  // { w, h, vw, vh, fit }: image and viewport sizes (CSS px), scale that shows the whole image
  let flicker = false;
  // saved per server and per build of the study: another study on the same port never sees these
  const keyOf = (suffix) => "fastiqa-human:" + location.host + ":" + study.study_id + ":" + suffix;

  async function api(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers["X-Rater-Token"] = token;
    const r = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined, cache: "no-store" });
    const doc = await r.json().catch(() => ({ error: "bad reply from the server" }));
    if (!r.ok) { const e = new Error(doc.error || r.statusText); e.status = r.status; throw e; }
    return doc;
  }

  // Retry until the server answers (it may be restarting); a refusal (4xx) is not retried.
  async function persistent(method, path, body) {
    for (let attempt = 0; ; attempt++) {
      try {
        const doc = await api(method, path, body);
        $("banner").hidden = true;
        return doc;
      } catch (e) {
        if (e.status && e.status < 500) throw e;
        $("banner").textContent = "Connection to the study server lost; your answer is kept and will be sent when it is back…";
        $("banner").hidden = false;
        await new Promise((res) => setTimeout(res, Math.min(2000, 250 * (attempt + 1))));
      }
    }
  }

  function show(section) {
    for (const id of ["start", "trial", "done"]) $(id).hidden = id !== section;
    $("answers").hidden = section !== "trial";
    $("progress-wrap").hidden = section === "start";
  }

  function progress(state) {
    const n = state.total, k = state.answered;
    $("progress-text").textContent = state.done ? `${n} of ${n} done` : `Image ${k + 1} of ${n}`;
    $("progress-fill").style.width = (100 * k / Math.max(1, n)) + "%";
    $("who").textContent = state.name;
  }

  // --- the resume link: shown once when a session starts, then under "Resume link" --------------
  function resumeLink() { return location.origin + location.pathname + "#resume=" + token; }

  function showResume(on) {
    $("resume-box").hidden = !on;
    $("copy-status").textContent = "";
    if (on) { $("resume-link").value = resumeLink(); $("resume-link").select(); }
    enableButtons(!on && ready);
  }

  $("resume-button").addEventListener("click", () => showResume($("resume-box").hidden));
  $("close-resume").addEventListener("click", () => showResume(false));
  $("copy-resume").addEventListener("click", async () => {
    const link = resumeLink();
    try {
      await navigator.clipboard.writeText(link);
    } catch (e) {  // no clipboard API (a plain-http address other than localhost): the selection
      $("resume-link").select();
      document.execCommand("copy");
    }
    $("copy-status").textContent = "Copied: paste it somewhere safe.";
  });

  // --- answer buttons and keys ------------------------------------------------------
  function keyFor(value) {
    if (study.protocol === "pc") return value === 0 ? "←" : "→";
    if (study.scale === 11 && value === 10) return "=";
    return String(value);
  }

  const QUESTION = {
    acr: "How good is the quality of this image?",
    "acr-hr": "How good is the quality of this image?",
    dcr: "How much is the processed image degraded compared with the reference?",
    pc: "Which image has the better quality?",
  };

  function buildButtons() {
    $("question").textContent = QUESTION[study.protocol] || "";
    const box = $("buttons");
    box.innerHTML = "";
    box.classList.toggle("compact", study.labels.length > 5);  // 9 and 11 levels fit one row at 1366 px
    const labels = study.labels.slice();
    if (study.protocol !== "pc") labels.reverse();  // best first, as on the printed scales
    for (const [value, label] of labels) {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.value = value;
      b.innerHTML = `<span class="key">${keyFor(value)}</span><span class="label"></span>`;
      b.querySelector(".label").textContent = label || String(value);
      b.addEventListener("click", () => answer(value));
      box.appendChild(b);
    }
    $("hint").textContent = study.keys_help;  // written for what this protocol shows (fastiqa.human.study)
  }

  function enableButtons(on) {
    for (const b of $("buttons").children) b.disabled = !on;
  }

  // --- panels: native size, synchronised zoom / pan, flicker ------------------------------
  // An image larger than its panel starts at native size, centred, with a cue in the panel's
  // label; F shows the whole image (and back to native size), the wheel zooms out to that too.
  const ROLE_LABEL = { reference: "Reference", test: "", A: "A", B: "B" };

  function centred(s) {
    return { s, x: (geom.vw - geom.w * s) / 2, y: (geom.vh - geom.h * s) / 2 };
  }

  function zoomCue() {
    const pct = Math.round(view.s * 100);
    const cropped = geom.w * view.s > geom.vw + 0.5 || geom.h * view.s > geom.vh + 0.5;
    if (Math.abs(view.s - 1) < 1e-9) return cropped ? "native size, cropped: drag to pan \u00b7 F: whole image" : "";
    if (view.s < 1) return `${pct}%: whole image, not native size \u00b7 F: native size`;
    return `zoom ${pct}% \u00b7 R: reset`;
  }

  function applyView() {
    const dpr = window.devicePixelRatio || 1;
    for (const img of document.querySelectorAll(".viewport img")) {
      let x = view.x, y = view.y;
      if (view.s === 1) {  // native size: every image pixel on one device pixel (a centred panel may sit at .5 px)
        const r = img.parentElement.getBoundingClientRect();
        x = Math.round((r.left + x) * dpr) / dpr - r.left;
        y = Math.round((r.top + y) * dpr) / dpr - r.top;
      }
      img.style.transform = `translate(${x}px, ${y}px) scale(${view.s})`;
      img.classList.toggle("zoomed", view.s > 1);
    }
    const cue = geom ? zoomCue() : "";
    for (const z of document.querySelectorAll(".panel-label .zoom")) z.textContent = cue;
  }

  function layout() {  // viewport sizes from the space the stage really has (the answer bar may wrap)
    if (!trial) return;
    const n = trial.panels.length, p = trial.panels[0];
    const dpr = window.devicePixelRatio || 1;
    const label = document.querySelector(".panel-label");
    const stage = $("stage");
    const availW = (stage.clientWidth - 40 - 16 * (n - 1)) / n;
    const availH = stage.clientHeight - $("trial-top").offsetHeight - $("trial-bottom").offsetHeight -
      (label ? label.offsetHeight + 6 : 0) - 4;
    const w = p.width / dpr, h = p.height / dpr;  // one image pixel on one device pixel
    const vw = Math.max(1, Math.floor(Math.min(w, availW))), vh = Math.max(1, Math.floor(Math.min(h, availH)));
    geom = { w, h, vw, vh, fit: Math.min(1, vw / w, vh / h) };
    for (const vp of document.querySelectorAll(".viewport")) {
      vp.style.width = vw + "px";
      vp.style.height = vh + "px";
    }
    // the centred layout may put a panel at .5 px: move the panels onto the device-pixel grid,
    // so that native size really is one image pixel per device pixel (no resampling)
    const box = $("panels");
    box.style.left = box.style.top = "0px";
    const r = document.querySelector(".viewport").getBoundingClientRect();
    box.style.left = (Math.round(r.left * dpr) / dpr - r.left) + "px";
    box.style.top = (Math.round(r.top * dpr) / dpr - r.top) + "px";
    view = centred(1);
    applyView();
  }

  function renderTrial(state) {
    trial = state.trial;
    ready = false;
    enableButtons(false);
    for (const b of $("buttons").children) b.classList.remove("chosen");
    $("training-badge").classList.toggle("invisible", !trial.training);
    const dpr = window.devicePixelRatio || 1;
    const n = trial.panels.length;
    const box = $("panels");
    box.innerHTML = "";
    let pending = n;
    for (const p of trial.panels) {
      const panel = document.createElement("div");
      panel.className = "panel";
      const label = document.createElement("div");
      label.className = "panel-label";
      const role = document.createElement("span");
      role.textContent = p.role === "test" && n > 1 ? "Processed" : (ROLE_LABEL[p.role] || "");
      const zoom = document.createElement("span");
      zoom.className = "zoom";
      label.append(role, zoom);
      const vp = document.createElement("div");
      vp.className = "viewport";
      const img = document.createElement("img");
      img.alt = p.role;
      img.draggable = false;
      img.style.width = p.width / dpr + "px";
      img.style.height = p.height / dpr + "px";
      img.dataset.src = p.src;
      img.onload = img.onerror = () => { if (--pending === 0) imagesReady(); };
      img.src = p.src;
      vp.appendChild(img);
      panel.append(label, vp);
      box.appendChild(panel);
      attachPanZoom(vp);
    }
    show("trial");
    progress(state);
    layout();
  }

  function imagesReady() {
    ready = true;
    shownAt = performance.now();
    enableButtons($("resume-box").hidden);
    maybeBreak();
  }

  function attachPanZoom(vp) {
    vp.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = vp.getBoundingClientRect();
      const cx = e.clientX - r.left, cy = e.clientY - r.top;
      const s = Math.min(16, Math.max(geom.fit, view.s * (e.deltaY < 0 ? 1.25 : 0.8)));
      if (s <= geom.fit + 1e-9) {
        view = centred(geom.fit);
      } else {
        view.x = cx - (cx - view.x) * s / view.s;
        view.y = cy - (cy - view.y) * s / view.s;
        view.s = s;
      }
      applyView();
    }, { passive: false });
    vp.addEventListener("mousedown", (e) => {
      e.preventDefault();
      const x0 = e.clientX - view.x, y0 = e.clientY - view.y;
      vp.classList.add("dragging");
      const move = (m) => { view.x = m.clientX - x0; view.y = m.clientY - y0; applyView(); };
      const up = () => { vp.classList.remove("dragging"); removeEventListener("mousemove", move); removeEventListener("mouseup", up); };
      addEventListener("mousemove", move);
      addEventListener("mouseup", up);
    });
  }

  function toggleFit() {  // whole image <-> native size, both centred
    if (!geom) return;
    view = centred(Math.abs(view.s - 1) < 1e-9 && geom.fit < 1 ? geom.fit : 1);
    applyView();
  }

  addEventListener("resize", () => layout());

  function setFlicker(on) {
    if (on === flicker || !trial) return;
    flicker = on;
    const imgs = Array.from(document.querySelectorAll(".viewport img"));
    if (imgs.length < 2) return;
    const a = imgs[imgs.length - 2], b = imgs[imgs.length - 1];  // the two images compared
    a.src = on ? b.dataset.src : a.dataset.src;
    b.src = on ? a.dataset.src : b.dataset.src;
    $("flicker-note").classList.toggle("invisible", !on);  // its row is always there: nothing moves
  }

  // --- votes ---------------------------------------------------------------------------
  async function answer(value) {
    if (!ready || busy || !trial || !$("resume-box").hidden || !$("break").hidden) return;
    busy = true;
    ready = false;
    enableButtons(false);
    const chosen = $("buttons").querySelector(`[data-value="${value}"]`);
    if (chosen) chosen.classList.add("chosen");
    const vote = { pos: trial.pos, value, response_ms: Math.round(performance.now() - shownAt),
                   viewport_w: window.innerWidth, viewport_h: window.innerHeight, dpr: window.devicePixelRatio || 1 };
    localStorage.setItem(keyOf("pending:" + token), JSON.stringify(vote));
    try {
      const state = await persistent("POST", "/api/vote", vote);
      localStorage.removeItem(keyOf("pending:" + token));
      next(state);
    } catch (e) {
      localStorage.removeItem(keyOf("pending:" + token));
      $("banner").textContent = "The server refused this answer: " + e.message;
      $("banner").hidden = false;
      next(await persistent("GET", "/api/next"));
    } finally {
      busy = false;
    }
  }

  function next(state) {
    if (state.done) {
      progress(state);
      show("done");
      trial = null;
      geom = null;
      return;
    }
    renderTrial(state);
  }

  function maybeBreak() {
    if (breakShown || (performance.now() - sessionStart) / 1000 < BREAK_AFTER_S) return;
    breakShown = true;
    ready = false;
    enableButtons(false);
    $("break").hidden = false;
    api("POST", "/api/event", { kind: "break_prompt", data: { minutes: BREAK_AFTER_S / 60 } }).catch(() => {});
  }

  $("break-button").addEventListener("click", () => {
    $("break").hidden = true;
    breakShown = false;
    sessionStart = performance.now();
    api("POST", "/api/event", { kind: "break_end", data: {} }).catch(() => {});
    ready = true;
    shownAt = performance.now();
    enableButtons($("resume-box").hidden);
  });

  document.addEventListener("keydown", (e) => {
    if (!trial || e.target.tagName === "INPUT") return;
    if (e.code === "Space") { e.preventDefault(); if (!e.repeat) setFlicker(true); return; }
    if (e.key === "r" || e.key === "R") { if (geom) { view = centred(1); applyView(); } return; }
    if (e.key === "f" || e.key === "F") { if (!e.repeat) toggleFit(); return; }
    if (e.repeat || !$("break").hidden || !$("resume-box").hidden) return;
    let value = null;
    if (study.protocol === "pc") {
      if (e.key === "ArrowLeft" || e.key === "1") value = 0;
      if (e.key === "ArrowRight" || e.key === "2") value = 1;
    } else if (study.scale === 11 && e.key === "=") {
      value = 10;
    } else if (/^[0-9]$/.test(e.key)) {
      value = Number(e.key);
    }
    if (value !== null && study.labels.some(([v]) => v === value)) { e.preventDefault(); answer(value); }
  });
  document.addEventListener("keyup", (e) => { if (e.code === "Space") setFlicker(false); });
  window.addEventListener("blur", () => setFlicker(false));

  // --- sessions ---------------------------------------------------------------------------
  async function begin(body) {
    const s = await api("POST", "/api/session", body);
    token = s.token;
    localStorage.setItem(keyOf("token"), token);
    history.replaceState(null, "", location.pathname + location.search + "#resume=" + token);
    $("resume-link").value = resumeLink();
    $("resume-button").hidden = false;
    const pending = localStorage.getItem(keyOf("pending:" + token));
    if (pending) {  // an answer given before a reload or a crash: send it (stored once at most)
      try { await persistent("POST", "/api/vote", JSON.parse(pending)); } catch (e) { /* refused: dropped */ }
      localStorage.removeItem(keyOf("pending:" + token));
    }
    next(await persistent("GET", "/api/next"));
    if (!body.token) showResume(true);  // a new session: its resume link, once, before the first image
  }

  $("start-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("start-error").hidden = true;
    try {
      await begin({ name: $("name").value });
    } catch (err) {
      $("start-error").textContent = err.message;
      $("start-error").hidden = false;
    }
  });

  async function main() {
    study = await persistent("GET", "/api/study");
    document.title = study.title + " · image quality study";
    $("title").textContent = study.title;
    $("start-title").textContent = study.title;
    $("instructions").textContent = study.instructions;
    buildButtons();
    $("keys-help").textContent = study.keys_help;
    const fromLink = (location.hash.match(/resume=([\w-]+)/) || [])[1];
    const saved = fromLink || localStorage.getItem(keyOf("token"));
    if (saved) {
      try { await begin({ token: saved }); return; } catch (e) { localStorage.removeItem(keyOf("token")); }
    }
    show("start");
    $("name").focus();
  }
  main();
})();
