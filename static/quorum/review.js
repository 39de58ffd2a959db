// Quorum's review page: settle the images the annotators disagree on, one after another.
// Each annotator's boxes are drawn thin in their own colour under an anonymous letter; the
// proposed consensus is the working set: agreed boxes start accepted, below-quorum ones
// start pending (dashed). Keyboard first: n next box, a accept, r reject, i ignore region,
// drag to adjust or draw, Ctrl+Z / Ctrl+Shift+Z, Enter saves and opens the next image.
(function () {
  "use strict";

  const root = document.getElementById("reviewer");
  if (!root) return;
  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d");
  const statusLine = document.getElementById("status");
  const legend = document.getElementById("legend");
  const counts = document.getElementById("counts");
  const COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324"];
  const HANDLE = 6;

  const state = {
    image: null, view: null, boxes: [], selected: -1, history: [], future: [],
    scale: 1, ox: 0, oy: 0, drag: null, showAnnotators: true, skipped: [],
  };

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function api(method, url, body) {
    const response = await fetch(url, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (error) { data = null; }
    return { status: response.status, data: data };
  }

  function say(text, kind) { statusLine.textContent = text; statusLine.className = "status " + (kind || ""); }

  function toScreen(x, y) { return [x * state.scale + state.ox, y * state.scale + state.oy]; }
  function toImage(sx, sy) { return [(sx - state.ox) / state.scale, (sy - state.oy) / state.scale]; }

  function fit() {
    const rect = canvas.parentElement.getBoundingClientRect();
    canvas.width = Math.round(rect.width);
    canvas.height = Math.round(Math.max(rect.height, 480));
    if (!state.image) return;
    state.scale = Math.min(canvas.width / state.image.width, canvas.height / state.image.height);
    state.ox = (canvas.width - state.image.width * state.scale) / 2;
    state.oy = (canvas.height - state.image.height * state.scale) / 2;
  }

  function rectOf(box) {
    const [x1, y1] = toScreen(box.x1, box.y1);
    const [x2, y2] = toScreen(box.x2, box.y2);
    return [x1, y1, x2 - x1, y2 - y1];
  }

  function draw() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!state.image) return;
    ctx.drawImage(state.image, state.ox, state.oy, state.image.width * state.scale, state.image.height * state.scale);
    if (state.showAnnotators) {
      state.view.annotators.forEach(function (annotator, index) {
        ctx.strokeStyle = COLOURS[index % COLOURS.length];
        ctx.lineWidth = 1;
        ctx.setLineDash([]);
        annotator.boxes.forEach(function (box) { ctx.strokeRect.apply(ctx, rectOf(box)); });
      });
    }
    state.boxes.forEach(function (box, index) {
      ctx.lineWidth = index === state.selected ? 4 : 3;
      ctx.setLineDash(box.status === "pending" ? [8, 5] : box.is_ignored ? [3, 3] : []);
      ctx.strokeStyle = box.status === "pending" ? "#ff9f1c" : box.is_ignored ? "#888" : "#00c853";
      ctx.strokeRect.apply(ctx, rectOf(box));
      if (index === state.selected) {
        ctx.fillStyle = "#fff";
        handles(box).forEach(function (h) { ctx.fillRect(h.x - HANDLE / 2, h.y - HANDLE / 2, HANDLE, HANDLE); });
      }
    });
    ctx.setLineDash([]);
    const pending = state.boxes.filter(function (b) { return b.status === "pending"; }).length;
    counts.textContent = state.boxes.length - pending + " accepted, " + pending + " pending";
  }

  function handles(box) {
    const [x1, y1] = toScreen(box.x1, box.y1);
    const [x2, y2] = toScreen(box.x2, box.y2);
    return [{ x: x1, y: y1, edges: ["x1", "y1"] }, { x: x2, y: y1, edges: ["x2", "y1"] },
      { x: x1, y: y2, edges: ["x1", "y2"] }, { x: x2, y: y2, edges: ["x2", "y2"] }];
  }

  function hit(sx, sy) {
    if (state.selected >= 0) {
      const handle = handles(state.boxes[state.selected]).find(function (h) {
        return Math.abs(h.x - sx) <= HANDLE && Math.abs(h.y - sy) <= HANDLE;
      });
      if (handle) return { index: state.selected, handle: handle };
    }
    const [x, y] = toImage(sx, sy);
    for (let i = state.boxes.length - 1; i >= 0; i--) {
      const b = state.boxes[i];
      if (x >= b.x1 && x <= b.x2 && y >= b.y1 && y <= b.y2) return { index: i, handle: null };
    }
    return null;
  }

  function snapshot() { return JSON.stringify(state.boxes); }
  function remember() { state.history.push(snapshot()); state.future = []; }
  function undo() {
    if (!state.history.length) return;
    state.future.push(snapshot()); state.boxes = JSON.parse(state.history.pop()); state.selected = -1; draw();
  }
  function redo() {
    if (!state.future.length) return;
    state.history.push(snapshot()); state.boxes = JSON.parse(state.future.pop()); state.selected = -1; draw();
  }

  function position(event) {
    const rect = canvas.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  canvas.addEventListener("mousedown", function (event) {
    if (!state.image) return;
    const [sx, sy] = position(event);
    const [x, y] = toImage(sx, sy);
    const found = hit(sx, sy);
    remember();
    if (found) {
      state.selected = found.index;
      state.drag = { kind: found.handle ? "resize" : "move", handle: found.handle, start: [x, y],
        original: Object.assign({}, state.boxes[found.index]) };
    } else {
      state.boxes.push({ x1: x, y1: y, x2: x, y2: y, status: "accepted", is_ignored: false });
      state.selected = state.boxes.length - 1;
      state.drag = { kind: "draw", start: [x, y] };
    }
    draw();
  });

  window.addEventListener("mousemove", function (event) {
    if (!state.drag) return;
    const [x, y] = toImage.apply(null, position(event));
    const box = state.boxes[state.selected];
    const drag = state.drag;
    if (drag.kind === "draw") {
      box.x1 = Math.min(drag.start[0], x); box.x2 = Math.max(drag.start[0], x);
      box.y1 = Math.min(drag.start[1], y); box.y2 = Math.max(drag.start[1], y);
    } else if (drag.kind === "move") {
      const dx = x - drag.start[0], dy = y - drag.start[1];
      box.x1 = drag.original.x1 + dx; box.x2 = drag.original.x2 + dx;
      box.y1 = drag.original.y1 + dy; box.y2 = drag.original.y2 + dy;
    } else {
      box[drag.handle.edges[0]] = x; box[drag.handle.edges[1]] = y;
    }
    draw();
  });

  window.addEventListener("mouseup", function () {
    if (!state.drag) return;
    const box = state.boxes[state.selected];
    const [x1, x2] = [Math.min(box.x1, box.x2), Math.max(box.x1, box.x2)];
    const [y1, y2] = [Math.min(box.y1, box.y2), Math.max(box.y1, box.y2)];
    const clamp = function (v, hi) { return Math.round(Math.max(0, Math.min(hi, v)) * 100) / 100; };
    Object.assign(box, { x1: clamp(x1, state.view.image.width), x2: clamp(x2, state.view.image.width),
      y1: clamp(y1, state.view.image.height), y2: clamp(y2, state.view.image.height) });
    if (state.drag.kind === "draw" && (box.x2 - box.x1 < 2 || box.y2 - box.y1 < 2)) {
      state.boxes.splice(state.selected, 1); state.selected = -1; state.history.pop();
    } else if (state.drag.kind !== "draw") {
      box.status = "accepted"; // adjusting a box decides it
    }
    state.drag = null;
    draw();
  });

  window.addEventListener("keydown", function (event) {
    if (!state.image || event.target.tagName === "INPUT") return;
    const box = state.boxes[state.selected];
    const key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && key === "z") { event.preventDefault(); event.shiftKey ? redo() : undo(); return; }
    if (key === "n" || event.key === "Tab") {
      event.preventDefault();
      if (!state.boxes.length) return;
      const pending = state.boxes.findIndex(function (b, i) { return i > state.selected && b.status === "pending"; });
      state.selected = pending >= 0 ? pending : (state.selected + 1) % state.boxes.length;
    } else if (key === "a" && box) { remember(); box.status = "accepted"; }
    else if ((key === "r" || event.key === "Delete" || event.key === "Backspace") && box) {
      remember(); state.boxes.splice(state.selected, 1); state.selected = -1;
    } else if (key === "i" && box) { remember(); box.is_ignored = !box.is_ignored; box.status = "accepted"; }
    else if (key === "h") { state.showAnnotators = !state.showAnnotators; }
    else if (event.key === "Enter") { event.preventDefault(); save(false); return; }
    else if (key === "g") { save(true); return; }
    else if (event.key === "Escape") { state.selected = -1; }
    else if (key === "s") { skip(); return; }
    else return;
    draw();
  });

  async function save(asGold) {
    const pending = state.boxes.filter(function (b) { return b.status === "pending"; }).length;
    if (pending) { say(pending + " box(es) still pending: accept (a) or reject (r) each first.", "error"); return; }
    const label = root.dataset.label;
    const boxes = state.boxes.map(function (b) {
      return { x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, label: label, is_ignored: !!b.is_ignored };
    });
    const result = await api("POST", "/api/v1/images/" + state.view.image.id + "/adjudication/", { boxes: boxes });
    if (result.status === 201 && asGold === true) {
      const gold = await api("POST", "/api/v1/images/" + state.view.image.id + "/gold/", { from_adjudication: true });
      if (gold.status !== 201) { say("Saved, but not made gold (" + gold.status + ").", "error"); return; }
    }
    if (result.status === 201) { say("Saved image #" + state.view.image.id + (asGold === true ? " as gold." : "."), "ok"); next(); }
    else { say((result.data && result.data.error && result.data.error.message) || "Not saved (" + result.status + ").", "error"); }
  }

  function skip() { state.skipped.push(state.view.image.id); next(); }

  // ?image=ID (from the report's least-agreed list) opens that image first.
  let asked = Number(new URLSearchParams(window.location.search).get("image")) || null;

  async function next() {
    root.dataset.ready = "0";
    let item = null;
    if (asked) {
      item = { image: asked, f1: null };
      asked = null;
    } else {
      const queue = await api("GET", root.dataset.queueUrl + "?limit=" + (state.skipped.length + 1));
      item = queue.data && queue.data.results.find(function (r) { return state.skipped.indexOf(r.image) < 0; });
    }
    if (!item) {
      state.image = null; state.boxes = []; draw();
      root.dataset.ready = "done";
      say("Nothing left to review. Thank you!", "ok");
      return;
    }
    const view = await api("GET", "/api/v1/images/" + item.image + "/adjudication/");
    if (view.status !== 200) { say("Image #" + item.image + " cannot be reviewed here.", "error"); next(); return; }
    state.view = view.data;
    redoButton.hidden = !view.data.adjudication;
    state.boxes = (view.data.consensus ? view.data.consensus.boxes : []).map(function (b) {
      return { x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, is_ignored: b.is_ignore,
        status: b.is_uncertain ? "pending" : "accepted" };
    });
    state.selected = -1; state.history = []; state.future = [];
    legend.innerHTML = "";
    view.data.annotators.forEach(function (annotator, index) {
      const chip = document.createElement("span");
      chip.className = "swatch";
      chip.style.borderColor = COLOURS[index % COLOURS.length];
      chip.textContent = annotator.name + " (" + annotator.boxes.length + ")";
      legend.appendChild(chip);
    });
    const image = new Image();
    image.onload = function () {
      state.image = image; fit(); draw();
      root.dataset.ready = "1";
      root.dataset.image = String(view.data.image.id);
      const f1 = view.data.consensus ? view.data.consensus.f1 : null;
      say("Image #" + view.data.image.id + ": pairwise F1 " + (f1 === null ? "-" : f1.toFixed(2)) + ".", "");
    };
    image.onerror = function () { say("The image could not be loaded.", "error"); };
    image.src = "/api/v1/images/" + item.image + "/file/";
  }

  window.quorumReview = {
    imageToScreen: function (x, y) {
      const rect = canvas.getBoundingClientRect();
      const [sx, sy] = toScreen(x, y);
      return { x: rect.left + sx, y: rect.top + sy };
    },
    boxes: function () { return JSON.parse(snapshot()); },
    select: function (index) { state.selected = index; draw(); },
  };

  window.addEventListener("resize", function () { fit(); draw(); });
  document.getElementById("save-button").addEventListener("click", function () { save(false); });
  document.getElementById("gold-button").addEventListener("click", function () { save(true); });
  const redoButton = document.getElementById("redo-button");
  redoButton.addEventListener("click", async function () {
    // drop the adjudication: the current version's consensus takes the image back
    const result = await api("DELETE", "/api/v1/images/" + state.view.image.id + "/adjudication/");
    if (result.status !== 200) { say("Not redone (" + result.status + ").", "error"); return; }
    asked = state.view.image.id;
    say("Adjudication dropped; the consensus is back.", "ok");
    next();
  });
  document.getElementById("skip-button").addEventListener("click", skip);
  next();
})();
