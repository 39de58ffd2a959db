// How an image and its boxes are shown on a canvas: boxes stay in image pixels (xyxy); the
// view (scale and offset) maps them to the screen and back. Shared by the annotation canvas
// and the review page, with the hit testing of boxes and their resize handles.

export const HANDLE = 6; // screen pixels

export class View {
  constructor() { this.scale = 1; this.ox = 0; this.oy = 0; }

  toScreen(x, y) { return [x * this.scale + this.ox, y * this.scale + this.oy]; }

  toImage(sx, sy) { return [(sx - this.ox) / this.scale, (sy - this.oy) / this.scale]; }

  // The whole image in a width x height area, centred.
  fit(width, height, imageWidth, imageHeight) {
    this.scale = Math.min(width / imageWidth, height / imageHeight);
    this.ox = (width - imageWidth * this.scale) / 2;
    this.oy = (height - imageHeight * this.scale) / 2;
  }

  // Zoom by `factor` keeping the image point under (sx, sy) where it is.
  zoomAt(sx, sy, factor) {
    const [ix, iy] = this.toImage(sx, sy);
    this.scale = Math.min(Math.max(this.scale * factor, 0.05), 40);
    this.ox = sx - ix * this.scale;
    this.oy = sy - iy * this.scale;
  }

  // A box as the screen rectangle [x, y, width, height].
  rect(box) {
    const [x1, y1] = this.toScreen(box.x1, box.y1);
    const [x2, y2] = this.toScreen(box.x2, box.y2);
    return [x1, y1, x2 - x1, y2 - y1];
  }

  // The eight resize handles of a box, in screen pixels, each naming the edges it moves.
  handles(box) {
    const [x1, y1] = this.toScreen(box.x1, box.y1);
    const [x2, y2] = this.toScreen(box.x2, box.y2);
    const xm = (x1 + x2) / 2, ym = (y1 + y2) / 2;
    return [
      { x: x1, y: y1, edges: "nw" }, { x: xm, y: y1, edges: "n" }, { x: x2, y: y1, edges: "ne" },
      { x: x2, y: ym, edges: "e" }, { x: x2, y: y2, edges: "se" }, { x: xm, y: y2, edges: "s" },
      { x: x1, y: y2, edges: "sw" }, { x: x1, y: ym, edges: "w" },
    ];
  }

  drawHandles(ctx, box) {
    this.handles(box).forEach(function (h) { ctx.fillRect(h.x - HANDLE / 2, h.y - HANDLE / 2, HANDLE, HANDLE); });
  }

  // What is under (sx, sy): a handle of the selected box ({index, edges}), else the topmost
  // box ({index, edges: ""}), else null.
  hit(boxes, selected, sx, sy) {
    if (selected >= 0 && boxes[selected]) {
      const handle = this.handles(boxes[selected]).find(function (h) {
        return Math.abs(h.x - sx) <= HANDLE && Math.abs(h.y - sy) <= HANDLE;
      });
      if (handle) return { index: selected, edges: handle.edges };
    }
    const [ix, iy] = this.toImage(sx, sy);
    for (let index = boxes.length - 1; index >= 0; index--) {
      const b = boxes[index];
      if (ix >= b.x1 && ix <= b.x2 && iy >= b.y1 && iy <= b.y2) return { index: index, edges: "" };
    }
    return null;
  }
}
