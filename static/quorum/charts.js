// Line charts as inline SVG, without a library: shared by the training run and monitoring pages.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const COLOURS = ["#1f6fb2", "#c2410c", "#15803d", "#7c3aed"];

  function node(name, attributes, parent) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (parent) parent.appendChild(element);
    return element;
  }

  // series: [{label, points: [[x, y], ...]}]; draws axes with min/max ticks and a legend.
  function lineChart(svg, series, xLabel, empty) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const width = 360, height = 200, left = 44, right = 10, top = 10, bottom = 34;
    const points = series.flatMap((s) => s.points).filter((p) => p[1] !== null && isFinite(p[1]));
    if (!points.length) {
      node("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, svg).textContent = empty || "no data yet";
      return;
    }
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    let [y0, y1] = [Math.min(0, ...ys), Math.max(...ys)];
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) y1 = y0 + 1;
    const sx = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
    const sy = (y) => height - bottom - ((y - y0) / (y1 - y0)) * (height - top - bottom);
    node("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, class: "axis" }, svg);
    node("line", { x1: left, y1: top, x2: left, y2: height - bottom, class: "axis" }, svg);
    node("text", { x: left - 4, y: sy(y1) + 4, "text-anchor": "end" }, svg).textContent = y1.toPrecision(3);
    node("text", { x: left - 4, y: sy(y0) + 4, "text-anchor": "end" }, svg).textContent = y0.toPrecision(3);
    node("text", { x: sx(x0), y: height - bottom + 14, "text-anchor": "start" }, svg).textContent = +x0.toPrecision(3);
    node("text", { x: sx(x1), y: height - bottom + 14, "text-anchor": "end" }, svg).textContent = +x1.toPrecision(3);
    node("text", { x: (left + width) / 2, y: height - 4, "text-anchor": "middle" }, svg).textContent = xLabel;
    series.forEach((s, index) => {
      const kept = s.points.filter((p) => p[1] !== null && isFinite(p[1]));
      if (!kept.length) return;
      const colour = COLOURS[index % COLOURS.length];
      node("polyline", {
        points: kept.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" "),
        fill: "none", stroke: colour, "stroke-width": 2, class: "series",
      }, svg);
      for (const p of kept) node("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: colour }, svg);
      node("text", { x: width - right, y: top + 12 * (index + 1), "text-anchor": "end", fill: colour }, svg).textContent = s.label;
    });
  }


  window.quorumCharts = { lineChart: lineChart };
})();
