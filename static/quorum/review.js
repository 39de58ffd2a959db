// Quorum's review page: settle the images the annotators disagree on, one after another.
// Each annotator's boxes are drawn thin in their own colour under an anonymous letter; the
// proposed consensus is the working set: agreed boxes start accepted, below-quorum ones
// start pending (dashed). Keyboard first: n next box, a accept, r reject, i ignore region,
// drag to adjust or draw, Ctrl+Z / Ctrl+Shift+Z, Enter saves and opens the next image.
// The view, hit testing, box editing, undo and the API helper are the annotation canvas's
// too (static/quorum/lib/).
import { api } from "./lib/api.js";
import { History, MIN_SIZE, dragEnd, dragStart, dragTo, drawnBox, tidyBox } from "./lib/editing.js";
import { View } from "./lib/view.js";

const root = document.getElementById("reviewer");
if (root) reviewer(root);

function reviewer(root) {
  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d");
  const statusLine = document.getElementById("status");
  const legend = document.getElementById("legend");
  const counts = document.getElementById("counts");
  const COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324"];

  const state = {
    image: null, view: null, boxes: [], selected: -1, drag: null, showAnnotators: true, skipped: [],
  };

  function say(text, kind) { statusLine.textContent = text; statusLine.className = "status " + (kind || ""); }

  const view = new View();

  function fit() {
    const rect = canvas.parentElement.getBoundingClientRect();
    canvas.width = Math.round(rect.width);
    canvas.height = Math.round(Math.max(rect.height, 480));
    if (!state.image) return;
    view.fit(canvas.width, canvas.height, state.image.width, state.image.height);
  }

  function draw() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!state.image) return;
    ctx.drawImage(state.image, view.ox, view.oy, state.image.width * view.scale, state.image.height * view.scale);
    if (state.showAnnotators) {
      state.view.annotators.forEach(function (annotator, index) {
        ctx.strokeStyle = COLOURS[index % COLOURS.length];
        ctx.lineWidth = 1;
        ctx.setLineDash([]);
        annotator.boxes.forEach(function (box) { ctx.strokeRect(...view.rect(box)); });
      });
    }
    state.boxes.forEach(function (box, index) {
      ctx.lineWidth = index === state.selected ? 4 : 3;
      ctx.setLineDash(box.status === "pending" ? [8, 5] : box.is_ignored ? [3, 3] : []);
      ctx.strokeStyle = box.status === "pending" ? "#ff9f1c" : box.is_ignored ? "#888" : "#00c853";
      ctx.strokeRect(...view.rect(box));
      if (index === state.selected) {
        ctx.fillStyle = "#fff";
        ctx.setLineDash([]);
        view.drawHandles(ctx, box);
      }
    });
    ctx.setLineDash([]);
    if (state.drag && state.drag.kind === "draw") {
      ctx.lineWidth = 3;
      ctx.strokeStyle = "#00c853";
      ctx.strokeRect(...view.rect(drawnBox(state.drag)));
    }
    const pending = state.boxes.filter(function (b) { return b.status === "pending"; }).length;
    counts.textContent = state.boxes.length - pending + " accepted, " + pending + " pending";
  }

  function snapshot() { return JSON.stringify(state.boxes); }
  function restore(text) { state.boxes = JSON.parse(text); state.selected = -1; }
  const edits = new History(snapshot, restore);
  function remember() { edits.remember(); }
  function undo() { if (edits.undo()) draw(); }
  function redo() { if (edits.redo()) draw(); }

  function position(event) {
    const rect = canvas.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  canvas.addEventListener("mousedown", function (event) {
    if (!state.image) return;
    const [sx, sy] = position(event);
    // a click that only selects a box keeps undo and redo as they were (lib/editing.js)
    const started = dragStart(view, state.boxes, state.selected, sx, sy, edits);
    state.selected = started.selected;
    state.drag = started.drag;
    draw();
  });

  window.addEventListener("mousemove", function (event) {
    if (!state.drag) return;
    const [x, y] = view.toImage(...position(event));
    dragTo(state.drag, state.boxes[state.selected], x, y);
    draw();
  });

  window.addEventListener("mouseup", function () {
    const drag = state.drag;
    state.drag = null;
    if (!drag || !state.image) return;
    const { width, height } = state.view.image;
    if (drag.kind === "draw") {
      const box = tidyBox(Object.assign(drawnBox(drag), { status: "accepted", is_ignored: false }), width, height);
      if (box.x2 - box.x1 >= MIN_SIZE && box.y2 - box.y1 >= MIN_SIZE) {
        remember();
        state.boxes.push(box);
        state.selected = state.boxes.length - 1;
      }
    } else {
      const box = state.boxes[state.selected];
      const status = box.status;
      box.status = "accepted"; // adjusting a box decides it; the undo step has the status it had
      if (!dragEnd(drag, box, width, height, edits)) box.status = status;
    }
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
    const opened = await api("GET", "/api/v1/images/" + item.image + "/adjudication/");
    if (opened.status !== 200) { say("Image #" + item.image + " cannot be reviewed here.", "error"); next(); return; }
    state.view = opened.data;
    redoButton.hidden = !opened.data.adjudication;
    state.boxes = (opened.data.consensus ? opened.data.consensus.boxes : []).map(function (b) {
      return { x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, is_ignored: b.is_ignore,
        status: b.is_uncertain ? "pending" : "accepted" };
    });
    state.selected = -1; edits.clear();
    legend.innerHTML = "";
    opened.data.annotators.forEach(function (annotator, index) {
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
      root.dataset.image = String(opened.data.image.id);
      const f1 = opened.data.consensus ? opened.data.consensus.f1 : null;
      say("Image #" + opened.data.image.id + ": pairwise F1 " + (f1 === null ? "-" : f1.toFixed(2)) + ".", "");
    };
    image.onerror = function () { say("The image could not be loaded.", "error"); };
    image.src = "/api/v1/images/" + item.image + "/file/";
  }

  window.quorumReview = {
    imageToScreen: function (x, y) {
      const rect = canvas.getBoundingClientRect();
      const [sx, sy] = view.toScreen(x, y);
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
}
