// Editing boxes with the mouse, and undo: shared by the annotation canvas and the review page.
//
// A drag starts on mouse down (`dragStart`): on a handle it resizes, on a box it moves, on
// nothing it draws. The undo step is taken at the start but kept only if the boxes changed
// (`dragEnd`), so a click that only selects a box leaves undo and redo as they were.

export const MIN_SIZE = 2; // image pixels: a smaller drawn box is a click, not a box

// Undo and redo of whole states (what `capture` returns, what `restore` takes back).
export class History {
  constructor(capture, restore) {
    this.capture = capture; this.restore = restore; this.past = []; this.future = [];
  }
  remember() { this.keep(this.capture()); }
  keep(step) { this.past.push(step); this.future = []; }
  undo() {
    if (!this.past.length) return false;
    this.future.push(this.capture());
    this.restore(this.past.pop());
    return true;
  }
  redo() {
    if (!this.future.length) return false;
    this.past.push(this.capture());
    this.restore(this.future.pop());
    return true;
  }
  clear() { this.past = []; this.future = []; }
}

export function sameBox(a, b) { return a.x1 === b.x1 && a.y1 === b.y1 && a.x2 === b.x2 && a.y2 === b.y2; }

// Corners in order and inside the image, to 1/100 px.
export function tidyBox(box, width, height) {
  const r = function (v, hi) { return Math.round(Math.max(0, Math.min(v, hi)) * 100) / 100; };
  const [x1, x2] = [Math.min(box.x1, box.x2), Math.max(box.x1, box.x2)];
  const [y1, y2] = [Math.min(box.y1, box.y2), Math.max(box.y1, box.y2)];
  return Object.assign(box, { x1: r(x1, width), y1: r(y1, height), x2: r(x2, width), y2: r(y2, height) });
}

// The drag a mouse down at screen (sx, sy) starts, and the box it selects (-1: none).
export function dragStart(view, boxes, selected, sx, sy, history) {
  const found = view.hit(boxes, selected, sx, sy);
  const [ix, iy] = view.toImage(sx, sy);
  if (!found) return { selected: -1, drag: { kind: "draw", x0: ix, y0: iy, x: ix, y: iy } };
  const box = boxes[found.index];
  return {
    selected: found.index,
    drag: { kind: found.edges ? "resize" : "move", edges: found.edges, ix: ix, iy: iy,
      start: Object.assign({}, box), before: history.capture() },
  };
}

// Follow the mouse at image point (ix, iy); `box` is the selected box (move, resize).
export function dragTo(drag, box, ix, iy) {
  if (drag.kind === "draw") { drag.x = ix; drag.y = iy; return; }
  const s = drag.start, dx = ix - drag.ix, dy = iy - drag.iy;
  if (drag.kind === "move") {
    box.x1 = s.x1 + dx; box.x2 = s.x2 + dx; box.y1 = s.y1 + dy; box.y2 = s.y2 + dy;
    return;
  }
  if (drag.edges.includes("w")) box.x1 = s.x1 + dx;
  if (drag.edges.includes("e")) box.x2 = s.x2 + dx;
  if (drag.edges.includes("n")) box.y1 = s.y1 + dy;
  if (drag.edges.includes("s")) box.y2 = s.y2 + dy;
}

// The rectangle a draw drag has made so far, in image pixels.
export function drawnBox(drag) {
  return { x1: Math.min(drag.x0, drag.x), y1: Math.min(drag.y0, drag.y),
    x2: Math.max(drag.x0, drag.x), y2: Math.max(drag.y0, drag.y) };
}

// End a move or resize: tidy the box, keep the undo step if it changed. True if it did.
export function dragEnd(drag, box, width, height, history) {
  tidyBox(box, width, height);
  if (sameBox(box, drag.start)) return false;
  history.keep(drag.before);
  return true;
}
