// Quorum's annotation canvas: draw, select, move and resize pedestrian boxes on one image.
// Coordinates are kept in image pixels (xyxy); the view (zoom, pan, device pixel ratio)
// only changes how they are drawn. No inline script: the page passes its URLs in data-*.
(function () {
  "use strict";

  const root = document.getElementById("annotator");
  if (!root) return;
  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d");
  const statusLine = document.getElementById("status");
  const countLine = document.getElementById("box-count");
  const saveLine = document.getElementById("save-state");
  const conflict = document.getElementById("conflict");
  const help = document.getElementById("help");
  const skipForm = document.getElementById("skip-form");
  const FLAG_KEYS = { o: "is_occluded", t: "is_truncated", i: "is_ignored" };
  const HANDLE = 6; // screen pixels
  const IDLE_AFTER = 30000; // ms without input: the clock stops
  const ZOOM_STEP = Math.pow(2, 0.25); // four wheel notches double the zoom

  const state = {
    task: null, image: null, boxes: [], selected: -1, history: [], future: [],
    scale: 1, ox: 0, oy: 0, dpr: window.devicePixelRatio || 1,
    drag: null, spaceDown: false, mouse: null, version: 0, dirty: false, saving: false,
    saveTimer: null, activeMs: 0, lastInput: Date.now(), lastTick: Date.now(), suggestions: [],
    display: { brightness: 1, contrast: 1, gamma: 1 },
  };

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function api(method, url, body, headers) {
    const response = await fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: Object.assign({ "Content-Type": "application/json", "X-CSRFToken": csrfToken() }, headers || {}),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch (error) { data = null; }
    }
    return { status: response.status, data: data };
  }

  function say(text, kind) {
    statusLine.textContent = text;
    statusLine.className = "status " + (kind || "");
  }

  // --- view --------------------------------------------------------------------------
  function toScreen(x, y) { return [x * state.scale + state.ox, y * state.scale + state.oy]; }
  function toImage(sx, sy) { return [(sx - state.ox) / state.scale, (sy - state.oy) / state.scale]; }

  function resize() {
    const rect = canvas.parentElement.getBoundingClientRect();
    state.dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(rect.width * state.dpr);
    canvas.height = Math.round(rect.height * state.dpr);
    canvas.style.width = rect.width + "px";
    canvas.style.height = rect.height + "px";
    draw();
  }

  function fit() {
    if (!state.image) return;
    const rect = canvas.getBoundingClientRect();
    state.scale = Math.min(rect.width / state.image.width, rect.height / state.image.height);
    state.ox = (rect.width - state.image.width * state.scale) / 2;
    state.oy = (rect.height - state.image.height * state.scale) / 2;
    draw();
  }

  function zoomAt(sx, sy, factor) {
    const [ix, iy] = toImage(sx, sy);
    state.scale = Math.min(Math.max(state.scale * factor, 0.05), 40);
    state.ox = sx - ix * state.scale;
    state.oy = sy - iy * state.scale;
    draw();
  }

  function colour(box, index) {
    if (box.is_ignored) return "#c026d3";
    if (box.is_occluded) return "#f59e0b";
    if (box.is_truncated) return "#06b6d4";
    return index === state.selected ? "#22c55e" : "#3b82f6";
  }

  function draw() {
    const rect = canvas.getBoundingClientRect();
    ctx.setTransform(state.dpr, 0, 0, state.dpr, 0, 0);
    ctx.fillStyle = "#1f2933";
    ctx.fillRect(0, 0, rect.width, rect.height);
    if (!state.image) return;
    ctx.imageSmoothingEnabled = state.scale < 2;
    ctx.filter = displayFilter();
    ctx.drawImage(state.image, state.ox, state.oy, state.image.width * state.scale, state.image.height * state.scale);
    ctx.filter = "none";
    // a model's suggestions (only where the project allows them): dashed, until taken with u
    ctx.strokeStyle = "#c084fc";
    ctx.lineWidth = 1.5;
    ctx.setLineDash([4, 4]);
    (state.suggestions || []).forEach(function (box) {
      const [x1, y1] = toScreen(box.x1, box.y1);
      const [x2, y2] = toScreen(box.x2, box.y2);
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    });
    ctx.setLineDash([]);
    state.boxes.forEach(function (box, index) {
      const [x1, y1] = toScreen(box.x1, box.y1);
      const [x2, y2] = toScreen(box.x2, box.y2);
      ctx.strokeStyle = colour(box, index);
      ctx.lineWidth = index === state.selected ? 2.5 : 1.5;
      ctx.setLineDash(box.is_ignored ? [6, 4] : []);
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      if (index === state.selected) {
        ctx.setLineDash([]);
        ctx.fillStyle = "#ffffff";
        handles(box).forEach(function (h) { ctx.fillRect(h.x - HANDLE / 2, h.y - HANDLE / 2, HANDLE, HANDLE); });
      }
    });
    ctx.setLineDash([]);
    if (state.drag && state.drag.kind === "draw") {
      const d = state.drag;
      const [x1, y1] = toScreen(Math.min(d.x0, d.x), Math.min(d.y0, d.y));
      const [x2, y2] = toScreen(Math.max(d.x0, d.x), Math.max(d.y0, d.y));
      ctx.strokeStyle = "#22c55e";
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    }
    if (state.mouse && !state.drag) {
      ctx.strokeStyle = "rgba(255,255,255,0.45)";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(state.mouse.x, 0); ctx.lineTo(state.mouse.x, rect.height);
      ctx.moveTo(0, state.mouse.y); ctx.lineTo(rect.width, state.mouse.y);
      ctx.stroke();
    }
    countLine.textContent = state.boxes.length + (state.boxes.length === 1 ? " box" : " boxes");
  }

  // The eight resize handles of a box, in screen pixels, each naming the edges it moves.
  function handles(box) {
    const [x1, y1] = toScreen(box.x1, box.y1);
    const [x2, y2] = toScreen(box.x2, box.y2);
    const xm = (x1 + x2) / 2, ym = (y1 + y2) / 2;
    return [
      { x: x1, y: y1, edges: "nw" }, { x: xm, y: y1, edges: "n" }, { x: x2, y: y1, edges: "ne" },
      { x: x2, y: ym, edges: "e" }, { x: x2, y: y2, edges: "se" }, { x: xm, y: y2, edges: "s" },
      { x: x1, y: y2, edges: "sw" }, { x: x1, y: ym, edges: "w" },
    ];
  }

  function hit(sx, sy) {
    if (state.selected >= 0) {
      const box = state.boxes[state.selected];
      const handle = handles(box).find(function (h) { return Math.abs(h.x - sx) <= HANDLE && Math.abs(h.y - sy) <= HANDLE; });
      if (handle) return { index: state.selected, edges: handle.edges };
    }
    const [ix, iy] = toImage(sx, sy);
    for (let index = state.boxes.length - 1; index >= 0; index--) {
      const b = state.boxes[index];
      if (ix >= b.x1 && ix <= b.x2 && iy >= b.y1 && iy <= b.y2) return { index: index, edges: "" };
    }
    return null;
  }

  // --- how the image is shown (brightness, contrast, gamma): the drawing only ---------------
  const DISPLAY_KEYS = { b: "brightness", c: "contrast", g: "gamma" };
  const DISPLAY_STEP = Math.pow(2, 0.25);
  const displayForm = document.getElementById("display");
  const gammaFuncs = document.querySelectorAll("#display-gamma feFuncR, #display-gamma feFuncG, #display-gamma feFuncB");

  function displayFilter() {
    const d = state.display;
    const parts = [];
    if (d.gamma !== 1) parts.push("url(#display-gamma)");
    if (d.brightness !== 1) parts.push("brightness(" + d.brightness + ")");
    if (d.contrast !== 1) parts.push("contrast(" + d.contrast + ")");
    return parts.length ? parts.join(" ") : "none";
  }

  function setDisplay(name, value) {
    const v = Math.min(Math.max(Math.round(value * 100) / 100, 0.25), 4);
    state.display[name] = v;
    // gamma > 1 lightens the mid-tones: each channel c becomes c^(1 / gamma)
    if (name === "gamma") gammaFuncs.forEach(function (f) { f.setAttribute("exponent", String(1 / v)); });
    if (displayForm) displayForm.elements[name].value = String(Math.log2(v)); // the sliders are in doublings
    draw();
  }

  if (displayForm) {
    ["brightness", "contrast", "gamma"].forEach(function (name) {
      displayForm.elements[name].addEventListener("input", function (event) {
        setDisplay(name, Math.pow(2, Number(event.target.value)));
      });
    });
    document.getElementById("display-reset").addEventListener("click", function () {
      ["brightness", "contrast", "gamma"].forEach(function (name) { setDisplay(name, 1); });
      canvas.focus();
    });
  }

  // --- edits and history -----------------------------------------------------------------
  function snapshot() { return JSON.stringify(state.boxes); }
  // An undo step holds the suggestions too, so that undoing u gives them back.
  function step() { return JSON.stringify({ boxes: state.boxes, suggestions: state.suggestions }); }
  function restore(text) {
    const saved = JSON.parse(text);
    state.boxes = saved.boxes;
    state.suggestions = saved.suggestions;
    root.dataset.suggestions = String(state.suggestions.length);
  }
  function remember() { state.history.push(step()); state.future = []; }
  function changed() { state.dirty = true; scheduleSave(); draw(); }
  function undo() {
    if (!state.history.length) return;
    state.future.push(step());
    restore(state.history.pop());
    state.selected = Math.min(state.selected, state.boxes.length - 1);
    changed();
  }
  function redo() {
    if (!state.future.length) return;
    state.history.push(step());
    restore(state.future.pop());
    state.selected = Math.min(state.selected, state.boxes.length - 1);
    changed();
  }
  function clampBox(box) {
    const w = state.image.width, h = state.image.height;
    const r = function (v) { return Math.round(v * 100) / 100; };
    return Object.assign(box, {
      x1: r(Math.max(0, Math.min(box.x1, w))), y1: r(Math.max(0, Math.min(box.y1, h))),
      x2: r(Math.max(0, Math.min(box.x2, w))), y2: r(Math.max(0, Math.min(box.y2, h))),
    });
  }

  function position(event) {
    const rect = canvas.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  }

  canvas.addEventListener("mousedown", function (event) {
    if (!state.image) return;
    touch();
    const p = position(event);
    if (event.button === 1 || state.spaceDown) {
      state.drag = { kind: "pan", sx: p.x, sy: p.y, ox: state.ox, oy: state.oy };
      event.preventDefault();
      return;
    }
    if (event.button !== 0) return;
    const found = hit(p.x, p.y);
    const [ix, iy] = toImage(p.x, p.y);
    if (found) {
      state.selected = found.index;
      const b = state.boxes[found.index];
      // the undo step is taken now but kept only if the box moves: a click that selects a
      // box changes nothing, so it leaves both undo and redo as they were
      state.drag = {
        kind: found.edges ? "resize" : "move", edges: found.edges, ix: ix, iy: iy, start: Object.assign({}, b),
        before: step(),
      };
    } else {
      state.selected = -1;
      state.drag = { kind: "draw", x0: ix, y0: iy, x: ix, y: iy };
    }
    draw();
  });

  window.addEventListener("mousemove", function (event) {
    if (!state.image) return;
    const p = position(event);
    state.mouse = p;
    const d = state.drag;
    if (!d) { draw(); return; }
    touch();
    const [ix, iy] = toImage(p.x, p.y);
    if (d.kind === "pan") {
      state.ox = d.ox + (p.x - d.sx);
      state.oy = d.oy + (p.y - d.sy);
    } else if (d.kind === "draw") {
      d.x = ix; d.y = iy;
    } else {
      const b = state.boxes[state.selected], s = d.start, dx = ix - d.ix, dy = iy - d.iy;
      if (d.kind === "move") {
        b.x1 = s.x1 + dx; b.x2 = s.x2 + dx; b.y1 = s.y1 + dy; b.y2 = s.y2 + dy;
      } else {
        if (d.edges.includes("w")) b.x1 = s.x1 + dx;
        if (d.edges.includes("e")) b.x2 = s.x2 + dx;
        if (d.edges.includes("n")) b.y1 = s.y1 + dy;
        if (d.edges.includes("s")) b.y2 = s.y2 + dy;
      }
    }
    draw();
  });

  window.addEventListener("mouseup", function () {
    const d = state.drag;
    state.drag = null;
    if (!d || !state.image) return;
    if (d.kind === "draw") {
      const box = clampBox({
        x1: Math.min(d.x0, d.x), y1: Math.min(d.y0, d.y), x2: Math.max(d.x0, d.x), y2: Math.max(d.y0, d.y),
        label: state.task.labels[0], is_occluded: false, is_truncated: false, is_ignored: false,
      });
      if (box.x2 - box.x1 >= 2 && box.y2 - box.y1 >= 2) {
        remember();
        state.boxes.push(box);
        state.selected = state.boxes.length - 1;
        changed();
      } else { draw(); }
    } else if (d.kind === "move" || d.kind === "resize") {
      const b = state.boxes[state.selected];
      const fixed = { x1: Math.min(b.x1, b.x2), x2: Math.max(b.x1, b.x2), y1: Math.min(b.y1, b.y2), y2: Math.max(b.y1, b.y2) };
      Object.assign(b, fixed);
      clampBox(b);
      if (sameBox(b, d.start)) {
        draw();
      } else {
        state.history.push(d.before);
        state.future = [];
        changed();
      }
    }
  });

  function sameBox(a, b) { return a.x1 === b.x1 && a.y1 === b.y1 && a.x2 === b.x2 && a.y2 === b.y2; }

  canvas.addEventListener("wheel", function (event) {
    if (!state.image) return;
    event.preventDefault();
    const p = position(event);
    zoomAt(p.x, p.y, event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP);
  }, { passive: false });

  canvas.addEventListener("mouseleave", function () { state.mouse = null; draw(); });

  window.addEventListener("keydown", function (event) {
    if (event.target.tagName === "INPUT" || event.target.tagName === "TEXTAREA") return;
    touch();
    const key = event.key.toLowerCase();
    if (event.key === " ") { state.spaceDown = true; event.preventDefault(); return; }
    if ((event.ctrlKey || event.metaKey) && key === "z") {
      event.preventDefault();
      if (event.shiftKey) redo(); else undo();
      return;
    }
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") { event.preventDefault(); submit(); return; }
    if (event.key === "?") { help.hidden = !help.hidden; return; }
    if (event.key === "Escape") { state.selected = -1; help.hidden = true; draw(); return; }
    if (key === "f" && !event.ctrlKey && !event.metaKey) { fit(); return; }
    if (DISPLAY_KEYS[key] && !event.ctrlKey && !event.metaKey && !event.altKey) {
      const name = DISPLAY_KEYS[key];
      setDisplay(name, state.display[name] * (event.shiftKey ? 1 / DISPLAY_STEP : DISPLAY_STEP));
      return;
    }
    if (event.key === "0" && !event.ctrlKey && !event.metaKey) {
      ["brightness", "contrast", "gamma"].forEach(function (name) { setDisplay(name, 1); });
      return;
    }
    if (key === "u" && !event.ctrlKey && !event.metaKey && state.suggestions.length) {
      useSuggestions();
      return;
    }
    if (state.selected < 0) return;
    if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      remember();
      state.boxes.splice(state.selected, 1);
      state.selected = -1;
      changed();
    } else if (FLAG_KEYS[key] && !event.ctrlKey && !event.metaKey) {
      remember();
      const flag = FLAG_KEYS[key];
      state.boxes[state.selected][flag] = !state.boxes[state.selected][flag];
      changed();
    }
  });
  window.addEventListener("keyup", function (event) { if (event.key === " ") state.spaceDown = false; });

  // --- time on task ------------------------------------------------------------------------
  function touch() { state.lastInput = Date.now(); }
  setInterval(function () {
    const now = Date.now();
    const idleAfter = Number(root.dataset.idleMs) || IDLE_AFTER;
    if (state.task && document.visibilityState === "visible" && now - state.lastInput < idleAfter) {
      state.activeMs += now - state.lastTick;
    }
    state.lastTick = now;
  }, 1000);

  // --- saving ------------------------------------------------------------------------------
  function scheduleSave() {
    saveLine.textContent = "unsaved changes";
    clearTimeout(state.saveTimer);
    state.saveTimer = setTimeout(saveDraft, 1200);
  }

  async function saveDraft() {
    if (!state.task || !state.dirty || state.saving) return;
    state.saving = true;
    saveLine.textContent = "saving…";
    const sent = snapshot();
    const result = await api("PUT", root.dataset.assignmentsUrl + state.task.id + "/draft/",
      { boxes: state.boxes, active_seconds: state.activeMs / 1000 }, { "If-Match": String(state.version) });
    state.saving = false;
    if (result.status === 200) {
      state.version = result.data.version;
      if (snapshot() === sent) { state.dirty = false; saveLine.textContent = "saved"; }
      else { scheduleSave(); }
    } else if (result.status === 412) {
      showConflict(result.data.error.fields);
    } else {
      saveLine.textContent = "not saved: " + (result.data && result.data.error ? result.data.error.message : result.status);
    }
  }

  function showConflict(fields) {
    conflict.hidden = false;
    saveLine.textContent = "not saved: another tab changed this task";
    conflict.querySelector(".their-count").textContent = fields.draft.length;
    document.getElementById("keep-mine").onclick = function () {
      state.version = fields.version;
      conflict.hidden = true;
      state.dirty = true;
      saveDraft();
    };
    document.getElementById("take-theirs").onclick = function () {
      remember();
      state.boxes = fields.draft;
      state.version = fields.version;
      state.selected = -1;
      state.dirty = false;
      conflict.hidden = true;
      saveLine.textContent = "loaded the other tab's boxes (undo brings yours back)";
      draw();
    };
  }

  async function submit() {
    if (!state.task) return;
    clearTimeout(state.saveTimer);
    say("submitting…");
    const result = await api("POST", root.dataset.assignmentsUrl + state.task.id + "/submit/",
      { boxes: state.boxes, active_seconds: state.activeMs / 1000 });
    if (result.status === 200 || result.status === 201) {
      root.dataset.lastAnnotation = result.data.annotation;
      say("submitted " + result.data.boxes + " box(es); loading the next image", "ok");
      await next();
    } else {
      const error = result.data && result.data.error;
      let text = error ? error.message : "submit failed (" + result.status + ")";
      if (error && error.fields && Array.isArray(error.fields.boxes)) {
        text += " " + error.fields.boxes.map(function (p) { return "box " + (p.index + 1) + ": " + p.errors.join(", "); }).join("; ");
      }
      say(text, "error");
    }
  }

  async function skip(reason) {
    const result = await api("POST", root.dataset.assignmentsUrl + state.task.id + "/skip/", { reason: reason });
    if (result.status === 200) { say("skipped; loading the next image", "ok"); await next(); }
    else { say(result.data && result.data.error ? result.data.error.message : "skip failed", "error"); }
  }

  skipForm.addEventListener("submit", function (event) {
    event.preventDefault();
    const reason = skipForm.elements.reason.value.trim();
    if (!reason) { say("Say why you skip this image.", "error"); return; }
    skipForm.elements.reason.value = "";
    skip(reason);
  });
  document.getElementById("submit-button").addEventListener("click", submit);
  document.getElementById("help-button").addEventListener("click", function () { help.hidden = !help.hidden; });

  // The model's suggestions become ordinary boxes, each marked as having begun as one
  // (kept through edits), so that the bias suggestions cause can be measured.
  function useSuggestions() {
    remember();
    state.suggestions.forEach(function (box) {
      state.boxes.push({
        x1: box.x1, y1: box.y1, x2: box.x2, y2: box.y2, label: box.label, is_occluded: false,
        is_truncated: false, is_ignored: false, is_from_suggestion: true,
      });
    });
    say(state.suggestions.length + " suggested boxes taken; adjust or delete them as for your own.");
    state.suggestions = [];
    root.dataset.suggestions = "0";
    changed();
  }

  // --- tasks ---------------------------------------------------------------------------------
  function load(task) {
    state.task = task;
    const taken = (task.draft || []).some(function (box) { return box.is_from_suggestion; });
    state.suggestions = taken ? [] : (task.suggestions || []);
    root.dataset.suggestions = String(state.suggestions.length);
    state.version = task.version;
    state.boxes = task.draft || [];
    state.history = []; state.future = []; state.selected = -1; state.dirty = false;
    state.activeMs = task.active_seconds * 1000;
    root.dataset.ready = "0";
    const image = new Image();
    image.onload = function () {
      state.image = image;
      fit();
      root.dataset.ready = "1";
      root.dataset.assignment = task.id;
      say(state.suggestions.length
        ? "A model suggests " + state.suggestions.length + " boxes (dashed): u takes them, or draw your own."
        : "Draw a box by dragging. ? shows the keys.");
      saveLine.textContent = "saved";
    };
    image.onerror = function () { say("The image could not be loaded.", "error"); };
    image.src = task.image_url;
  }

  async function next() {
    const result = await api("POST", root.dataset.nextTaskUrl);
    if (result.status === 200) { load(result.data); }
    else if (result.status === 204) {
      state.task = null; state.image = null; state.boxes = [];
      root.dataset.ready = "done";
      say("Nothing left for you in this project. Thank you!", "ok");
      draw();
    } else {
      const error = result.data && result.data.error;
      say(error && error.message ? error.message : "Could not get a task (" + result.status + ").", "error");
    }
  }

  window.quorumCanvas = {
    imageToScreen: function (x, y) {
      const rect = canvas.getBoundingClientRect();
      const [sx, sy] = toScreen(x, y);
      return { x: sx + rect.left, y: sy + rect.top };
    },
    view: function () { return { scale: state.scale, ox: state.ox, oy: state.oy }; },
    boxes: function () { return JSON.parse(snapshot()); },
    version: function () { return state.version; },
    activeSeconds: function () { return state.activeMs / 1000; },
    // Mean milliseconds of `count` full redraws (image and every box), for smoothness checks.
    redrawMs: function (count) {
      const started = performance.now();
      for (let i = 0; i < count; i++) draw();
      return (performance.now() - started) / count;
    },
    saveNow: saveDraft,
    display: function () { return Object.assign({}, state.display); },
    // The drawn colour at an image point (r, g, b), as the annotator sees it.
    pixel: function (x, y) {
      const [sx, sy] = toScreen(x, y);
      const data = ctx.getImageData(Math.round(sx * state.dpr), Math.round(sy * state.dpr), 1, 1).data;
      return [data[0], data[1], data[2]];
    },
  };
  window.addEventListener("resize", function () { resize(); fit(); });
  resize();
  next();
})();
