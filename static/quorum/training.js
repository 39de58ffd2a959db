// The training run page: polls the run's API while it is queued or running and redraws
// the progress bar, the learning curves (static/quorum/charts.js) and the log tail.
import { lineChart } from "./charts.js";

const section = document.getElementById("progress");
if (section) runPage(section);

function runPage(section) {
  const url = section.dataset.runUrl;
  const LIVE = new Set(["queued", "running"]);
  let state = section.dataset.state;

  function text(id, value) {
    const element = document.getElementById(id);
    if (element) element.textContent = value;
  }

  function draw(run) {
    const history = run.history || [];
    const lossNames = history.length ? Object.keys(history[history.length - 1].losses || {}) : [];
    lineChart(document.getElementById("chart-loss"),
      lossNames.map((name) => ({ label: name, points: history.map((h) => [h.epoch, h.losses[name]]) })), "epoch");
    lineChart(document.getElementById("chart-map"), [
      { label: "mAP50", points: history.map((h) => [h.epoch, h.map50]) },
      { label: "mAP50-95", points: history.map((h) => [h.epoch, h.map50_95]) },
    ], "epoch");
    lineChart(document.getElementById("chart-hours"),
      [{ label: "mAP50", points: history.map((h) => [h.elapsed / 3600, h.map50]) }], "training hours");
  }

  function show(run) {
    text("run-state", run.state.charAt(0).toUpperCase() + run.state.slice(1));
    const bar = document.getElementById("run-progress");
    bar.max = run.epochs;
    bar.value = run.epoch;
    text("run-epochs", `epoch ${run.epoch} of ${run.epochs}`);
    text("run-eta", LIVE.has(run.state) && run.eta_seconds ? `about ${Math.round(run.eta_seconds)} s left` : "");
    text("run-attempts", String(run.attempts));
    const error = document.getElementById("run-error");
    error.textContent = run.error;
    error.hidden = !run.error;
    const log = document.getElementById("run-log");
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = run.log_tail;
    if (atEnd) log.scrollTop = log.scrollHeight;
    if (run.marginal_gain) {
      text("run-gain", `Over the last ${run.marginal_gain.epochs} epochs, val mAP50 gained ` +
        `${run.marginal_gain.per_hour.toFixed(3)} per extra training hour.`);
    }
    draw(run);
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const run = await response.json();
        show(run);
        if (LIVE.has(state) && !LIVE.has(run.state)) {
          window.location.reload(); // the evaluation and the model link are drawn by the server
          return;
        }
        state = run.state;
      }
    } catch (error) {
      // a dropped request is retried on the next tick
    }
    if (LIVE.has(state)) window.setTimeout(poll, 2000);
  }

  poll();
}
