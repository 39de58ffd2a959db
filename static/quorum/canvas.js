// Quorum's annotation canvas: draw, select, move and resize pedestrian boxes on one image.
// Coordinates are kept in image pixels (xyxy); the view (zoom, pan, device pixel ratio)
// only changes how they are drawn. No inline script: the page passes its URLs in data-*.
// The view, hit testing, box editing, undo and the API helper are the review page's too
// (static/quorum/lib/).
import { api } from "./lib/api.js";
import { History, MIN_SIZE, dragEnd, dragStart, dragTo, drawnBox, tidyBox } from "./lib/editing.js";
import { View } from "./lib/view.js";

const root = document.getElementById("annotator");
if (root) annotator(root);

function annotator(root) {
  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d");
  const statusLine = document.getElementById("status");
  const countLine = document.getElementById("box-count");
  const saveLine = document.getElementById("save-state");
  const conflict = document.getElementById("conflict");
  const help = document.getElementById("help");
  const skipForm = document.getElementById("skip-form");
  const FLAG_KEYS = { o: "is_occluded", t: "is_truncated", i: "is_ignored" };
  const IDLE_AFTER = 30000; // ms without input: the clock stops
  const ZOOM_STEP = Math.pow(2, 0.25); // four wheel notches double the zoom

  const state = {
    task: null, image: null, boxes: [], selected: -1, dpr: window.devicePixelRatio || 1,
    drag: null, spaceDown: false, mouse: null, version: 0, dirty: false, saving: false,
    saveTimer: null, activeMs: 0, lastInput: Date.now(), lastTick: Date.now(), suggestions: [],
    display: { brightness: 1, contrast: 1, gamma: 1 },
    ahead: null, submittedAt: null, switchMs: null,
  };

  function say(text, kind) {
    statusLine.textContent = text;
    statusLine.className = "status " + (kind || "");
  }

  // --- view --------------------------------------------------------------------------
  const view = new View();

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
    view.fit(rect.width, rect.height, state.image.width, state.image.height);
    draw();
  }

  function zoomAt(sx, sy, factor) {
    view.zoomAt(sx, sy, factor);
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
    ctx.imageSmoothingEnabled = view.scale < 2;
    ctx.filter = displayFilter();
    ctx.drawImage(state.image, view.ox, view.oy, state.image.width * view.scale, state.image.height * view.scale);
    ctx.filter = "none";
    // a model's suggestions (only where the project allows them): dashed, until taken with u
    ctx.strokeStyle = "#c084fc";
    ctx.lineWidth = 1.5;
    ctx.setLineDash([4, 4]);
    (state.suggestions || []).forEach(function (box) { ctx.strokeRect(...view.rect(box)); });
    ctx.setLineDash([]);
    state.boxes.forEach(function (box, index) {
      ctx.strokeStyle = colour(box, index);
      ctx.lineWidth = index === state.selected ? 2.5 : 1.5;
      ctx.setLineDash(box.is_ignored ? [6, 4] : []);
      ctx.strokeRect(...view.rect(box));
      if (index === state.selected) {
        ctx.setLineDash([]);
        ctx.fillStyle = "#ffffff";
        view.drawHandles(ctx, box);
      }
    });
    ctx.setLineDash([]);
    if (state.drag && state.drag.kind === "draw") {
      ctx.strokeStyle = "#22c55e";
      ctx.strokeRect(...view.rect(drawnBox(state.drag)));
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
  const edits = new History(step, restore);
  function remember() { edits.remember(); }
  function changed() { state.dirty = true; scheduleSave(); draw(); }
  function undone() {
    state.selected = Math.min(state.selected, state.boxes.length - 1);
    changed();
  }
  function undo() { if (edits.undo()) undone(); }
  function redo() { if (edits.redo()) undone(); }

  function position(event) {
    const rect = canvas.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  }

  canvas.addEventListener("mousedown", function (event) {
    if (!state.image) return;
    touch();
    const p = position(event);
    if (event.button === 1 || state.spaceDown) {
      state.drag = { kind: "pan", sx: p.x, sy: p.y, ox: view.ox, oy: view.oy };
      event.preventDefault();
      return;
    }
    if (event.button !== 0) return;
    // a click that only selects a box keeps undo and redo as they were (lib/editing.js)
    const started = dragStart(view, state.boxes, state.selected, p.x, p.y, edits);
    state.selected = started.selected;
    state.drag = started.drag;
    draw();
  });

  window.addEventListener("mousemove", function (event) {
    if (!state.image) return;
    const p = position(event);
    state.mouse = p;
    const d = state.drag;
    if (!d) { draw(); return; }
    touch();
    if (d.kind === "pan") {
      view.ox = d.ox + (p.x - d.sx);
      view.oy = d.oy + (p.y - d.sy);
    } else {
      const [ix, iy] = view.toImage(p.x, p.y);
      dragTo(d, state.boxes[state.selected], ix, iy);
    }
    draw();
  });

  window.addEventListener("mouseup", function () {
    const d = state.drag;
    state.drag = null;
    if (!d || !state.image) return;
    if (d.kind === "draw") {
      const box = tidyBox(Object.assign(drawnBox(d), {
        label: state.task.labels[0], is_occluded: false, is_truncated: false, is_ignored: false,
      }), state.image.width, state.image.height);
      if (box.x2 - box.x1 >= MIN_SIZE && box.y2 - box.y1 >= MIN_SIZE) {
        remember();
        state.boxes.push(box);
        state.selected = state.boxes.length - 1;
        changed();
      } else { draw(); }
    } else if (d.kind === "move" || d.kind === "resize") {
      const moved = dragEnd(d, state.boxes[state.selected], state.image.width, state.image.height, edits);
      if (moved) changed(); else draw();
    }
  });

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
    state.submittedAt = performance.now();
    const result = await api("POST", root.dataset.assignmentsUrl + state.task.id + "/submit/",
      { boxes: state.boxes, active_seconds: state.activeMs / 1000 });
    if (result.status === 200 || result.status === 201) {
      root.dataset.lastAnnotation = result.data.annotation;
      say("submitted " + result.data.boxes + " box(es); loading the next image", "ok");
      // the task leased ahead is the next one (the oldest lease left): shown at once, unless
      // its lease ran out meanwhile, when the server is asked again
      const ahead = state.ahead;
      if (ahead && Date.parse(ahead.task.lease_expires_at) > Date.now() + 5000) load(ahead.task);
      else await next();
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
    edits.clear(); state.selected = -1; state.dirty = false;
    state.activeMs = task.active_seconds * 1000;
    root.dataset.ready = "0";
    // the image leased ahead and decoded while the last one was worked on, when it is this one
    const ahead = state.ahead && state.ahead.id === task.id ? state.ahead.image : null;
    state.ahead = null;
    root.dataset.fromAhead = ahead ? "1" : "0";
    if (ahead) { show(task, ahead); return; }
    const image = new Image();
    image.onload = function () { show(task, image); };
    image.onerror = function () { say("The image could not be loaded.", "error"); };
    image.src = task.image_url;
  }

  function show(task, image) {
    state.image = image;
    fit();
    if (state.submittedAt !== null) {
      state.switchMs = performance.now() - state.submittedAt;
      state.submittedAt = null;
    }
    root.dataset.ready = "1";
    root.dataset.assignment = task.id;
    say(state.suggestions.length
      ? "A model suggests " + state.suggestions.length + " boxes (dashed): u takes them, or draw your own."
      : "Draw a box by dragging. ? shows the keys.");
    saveLine.textContent = "saved";
    leaseAhead(task);
  }

  // Lease the task after this one now and decode its image, so that submit shows it at once.
  async function leaseAhead(current) {
    const result = await api("POST", root.dataset.nextTaskUrl + "?ahead=1");
    if (result.status !== 200 || result.data.id === current.id || state.task !== current) return;
    let image;
    try {
      // decoded into a bitmap ready to draw, so that showing it costs one drawImage; an
      // <img> rather than fetch, since on S3 the URL redirects to the bucket, which an
      // <img> may read without the bucket allowing Quorum's origin (CORS)
      const element = new Image();
      element.src = result.data.image_url;
      await element.decode();
      image = await createImageBitmap(element);
    } catch (error) {
      return; // loaded again when its turn comes
    }
    if (state.task === current) {
      state.ahead = { id: result.data.id, task: result.data, image: image };
      root.dataset.ahead = String(result.data.id);
    }
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
      const [sx, sy] = view.toScreen(x, y);
      return { x: sx + rect.left, y: sy + rect.top };
    },
    view: function () { return { scale: view.scale, ox: view.ox, oy: view.oy }; },
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
    // Milliseconds from the last submit to the next image drawn (null before one).
    switchMs: function () { return state.switchMs; },
    display: function () { return Object.assign({}, state.display); },
    // The drawn colour at an image point (r, g, b), as the annotator sees it.
    pixel: function (x, y) {
      const [sx, sy] = view.toScreen(x, y);
      const data = ctx.getImageData(Math.round(sx * state.dpr), Math.round(sy * state.dpr), 1, 1).data;
      return [data[0], data[1], data[2]];
    },
  };
  window.addEventListener("resize", function () { resize(); fit(); });
  resize();
  next();
}
