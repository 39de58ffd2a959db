// Line charts with the values under the pointer, shared by the training run and monitoring
// pages: uPlot (static/vendor/uplot/, vendored, nothing from outside the server).
import uPlot from "../vendor/uplot/uPlot.esm.js";

const COLOURS = ["#1f6fb2", "#c2410c", "#15803d", "#7c3aed"];
const WIDTH = 360, HEIGHT = 200;

function round(value) {
  return value === null || value === undefined ? "-" : +Number(value).toPrecision(4);
}

// series: [{label, points: [[x, y], ...]}], drawn in `container` (a div) against `xLabel`;
// redrawn in place when called again with the same series. `empty`: what to say with no data.
export function lineChart(container, series, xLabel, empty) {
  const kept = series.map((s) => ({ label: s.label, points: s.points.filter((p) => p[1] !== null && isFinite(p[1])) }));
  if (!kept.some((s) => s.points.length)) {
    if (container.chart) { container.chart.destroy(); container.chart = null; }
    container.replaceChildren(Object.assign(document.createElement("p"), {
      className: "muted small chart-empty", textContent: empty || "no data yet",
    }));
    container.dataset.points = "0";
    return;
  }
  // one x axis for every series; a series without a value at some x leaves a gap there
  const xs = [...new Set(kept.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const data = [xs, ...kept.map((s) => {
    const byX = new Map(s.points);
    return xs.map((x) => (byX.has(x) ? byX.get(x) : null));
  })];
  const labels = kept.map((s) => s.label).join("\n");
  container.dataset.points = String(xs.length);
  if (container.chart && container.dataset.labels === labels) {
    container.chart.setData(data);
    return;
  }
  if (container.chart) container.chart.destroy();
  container.replaceChildren();
  container.dataset.labels = labels;
  container.chart = new uPlot({
    width: container.clientWidth || WIDTH,
    height: HEIGHT,
    legend: { live: true },
    cursor: { points: { size: 7 } },
    scales: { x: { time: false } },
    axes: [{ label: xLabel, size: 40 }, { size: 48 }],
    series: [
      { label: xLabel, value: (u, value) => round(value) },
      ...kept.map((s, index) => ({
        label: s.label,
        stroke: COLOURS[index % COLOURS.length],
        width: 2,
        spanGaps: true,
        points: { show: true, size: 4 },
        value: (u, value) => round(value),
      })),
    ],
  }, data, container);
}
