// The monitoring page: polls GET /api/v1/serving/metrics/ every 5 s and redraws the table
// (total, per model version, per client) and the per-minute charts.
import { lineChart } from "./charts.js";

const root = document.getElementById("monitoring");
if (root) monitoringPage(root);

function monitoringPage(root) {
  const windowSelect = document.getElementById("window");

  function number(value, digits) {
    return value === null || value === undefined ? "" : Number(value).toFixed(digits);
  }

  function row(name, figures) {
    const tr = document.createElement("tr");
    const cells = [name, String(figures.requests), number(figures.per_minute, 1), number(figures.p50_ms, 1),
      number(figures.p95_ms, 1), number(figures.p99_ms, 1),
      figures.error_rate === null ? "" : `${(100 * figures.error_rate).toFixed(1)}%`];
    cells.forEach((text, index) => {
      const cell = document.createElement(index === 0 ? "th" : "td");
      cell.textContent = text;
      tr.appendChild(cell);
    });
    return tr;
  }

  function show(metrics) {
    const body = document.querySelector("#totals tbody");
    body.replaceChildren(row("all requests", metrics.total));
    for (const [name, figures] of Object.entries(metrics.models)) body.appendChild(row(name, figures));
    for (const [name, figures] of Object.entries(metrics.clients)) body.appendChild(row(`client: ${name}`, figures));
    const minutesAgo = (minute) => minute - metrics.minutes;
    lineChart(document.getElementById("chart-requests"),
      [{ label: "requests", points: metrics.series.map((s) => [minutesAgo(s.minute), s.requests]) }], "minutes ago");
    lineChart(document.getElementById("chart-latency"),
      [{ label: "p95", points: metrics.series.map((s) => [minutesAgo(s.minute), s.p95_ms]) }], "minutes ago");
    lineChart(document.getElementById("chart-errors"),
      [{ label: "errors", points: metrics.series.map((s) => [minutesAgo(s.minute), s.errors]) }], "minutes ago");
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    root.dataset.requests = String(metrics.total.requests);
  }

  async function poll() {
    try {
      const response = await fetch(`${root.dataset.metricsUrl}&minutes=${windowSelect.value}`,
        { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) show(await response.json());
    } catch (error) {
      // retried on the next tick
    }
  }

  windowSelect.addEventListener("change", poll);
  poll();
  window.setInterval(poll, 5000);
}
