// The try-it page: send an image to POST /api/v1/predict/ (the session signs it) and draw
// the boxes of the answer over the image. No library, nothing from outside this server.
import { csrfToken } from "./lib/api.js";

const root = document.getElementById("try");
if (root) tryIt(root);

function tryIt(root) {
  const canvas = document.getElementById("try-canvas");
  const ctx = canvas.getContext("2d");
  const statusLine = document.getElementById("try-status");

  function say(text, kind) { statusLine.textContent = text; statusLine.className = "status " + (kind || ""); }

  function draw(bitmap, answer) {
    const scale = Math.min(960 / bitmap.width, 640 / bitmap.height, 1);
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    ctx.lineWidth = 2;
    ctx.font = "13px system-ui, sans-serif";
    for (const box of answer.boxes) {
      const x = box.x1 * scale, y = box.y1 * scale, w = (box.x2 - box.x1) * scale, h = (box.y2 - box.y1) * scale;
      ctx.strokeStyle = "#22c55e";
      ctx.strokeRect(x, y, w, h);
      const label = `${box.label} ${box.score.toFixed(2)}`;
      ctx.fillStyle = "#22c55e";
      ctx.fillRect(x, Math.max(0, y - 16), ctx.measureText(label).width + 6, 16);
      ctx.fillStyle = "#062";
      ctx.fillText(label, x + 3, Math.max(12, y - 4));
    }
    canvas.dataset.boxes = String(answer.boxes.length);
  }

  async function predict(blob, name) {
    say(`Sending ${name}…`);
    const form = new FormData();
    form.append("image", blob, name);
    form.append("project", root.dataset.project);
    form.append("model", document.getElementById("try-model").value);
    form.append("conf", document.getElementById("try-conf").value);
    const response = await fetch(root.dataset.predictUrl, {
      method: "POST", body: form, credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() },
    });
    const answer = await response.json();
    if (!response.ok) {
      say(answer.error ? answer.error.message : `Refused (${response.status}).`, "error");
      return;
    }
    draw(await createImageBitmap(blob, { imageOrientation: "from-image" }), answer);
    document.getElementById("try-answer").hidden = false;
    document.getElementById("try-answer-model").textContent =
      `model ${answer.model.number} (${answer.model.architecture} at ${answer.model.imgsz} px)`;
    document.getElementById("try-answer-rule").textContent =
      answer.rule ? `rule "${answer.rule.name}"` : answer.chosen_by === "request" ? "this page's choice" : "the champion (no rule matched)";
    document.getElementById("try-answer-latency").textContent = `${answer.latency_ms.toFixed(1)} ms`;
    document.getElementById("try-answer-boxes").textContent = String(answer.boxes.length);
    say(`${name}: ${answer.boxes.length} boxes.`, "ok");
  }

  for (const button of root.querySelectorAll("button.sample")) {
    button.addEventListener("click", async () => {
      const response = await fetch(button.dataset.src, { credentials: "same-origin" });
      predict(await response.blob(), button.dataset.name);
    });
  }
  document.getElementById("try-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) predict(file, file.name);
  });
}
