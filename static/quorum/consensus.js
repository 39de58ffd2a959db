// The consensus page: while a version is pending or running, ask its API every few seconds,
// show how many of its chunks are done, and reload the page once it is done or failed (the counts and the report link are drawn
// by the server). In the form, a quorum typed unticks reliability weighting.
(function () {
  "use strict";
  // a quorum and reliability weighting exclude each other: typing a quorum unticks the weighting
  const quorum = document.querySelector("#new-version input[name=quorum]");
  const weighted = document.querySelector("#new-version input[name=reliability_weighted]");
  if (quorum && weighted) {
    quorum.addEventListener("input", () => {
      if (quorum.value.trim() !== "") weighted.checked = false;
    });
  }
})();

(function () {
  "use strict";
  const LIVE = new Set(["pending", "running"]);
  const rows = Array.from(document.querySelectorAll("tr.version[data-url]")).filter((row) => LIVE.has(row.dataset.state));
  if (!rows.length) return;
  const EVERY_MS = 3000;

  async function poll() {
    for (const row of rows) {
      try {
        const response = await fetch(row.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!response.ok) continue;
        const version = await response.json();
        if (version.state !== row.dataset.state) {
          window.location.reload();
          return;
        }
        const chunks = row.querySelector(".chunks");
        if (chunks && version.chunks) {
          const workers = version.chunks.workers > 1 ? `, ${version.chunks.workers} workers` : "";
          chunks.textContent = `${version.chunks.done} of ${version.chunks.total} chunks done${workers}`;
        }
      } catch (error) {
        // the server is restarting, say: ask again next time
      }
    }
    window.setTimeout(poll, EVERY_MS);
  }
  window.setTimeout(poll, EVERY_MS);
})();
