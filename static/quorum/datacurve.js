// The data curve page: recall and AP50 against training images, the measured points with
// each fit drawn out to 4x the images (values under the pointer, charts.js).
import { lineChart } from "./charts.js";

for (const figure of ["recall", "ap50"]) {
  const container = document.getElementById(`chart-${figure}`);
  const data = document.getElementById(`chart-${figure}-data`);
  if (container && data) lineChart(container, JSON.parse(data.textContent), "training images", "no points yet");
}
