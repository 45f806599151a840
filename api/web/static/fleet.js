// The fleet overview: devices by state, open alerts by severity, silent devices, a device search.
"use strict";

function bars(container, counts, kind) {
  const entries = Object.entries(counts || {});
  const max = Math.max(1, ...entries.map(([, n]) => n));
  container.replaceChildren();
  if (!entries.length) container.append(el("p", { className: "muted", text: "None." }));
  for (const [name, n] of entries) {
    const bar = el("span", { className: "bar " + kind + "-" + name.toLowerCase() });
    bar.style.width = Math.max(2, (100 * n) / max) + "%";
    container.append(
      el("div", { className: "bar-row", "data-name": name, "data-count": n },
        el("span", { className: "bar-label", text: name }),
        el("span", { className: "bar-track" }, bar),
        el("span", { className: "num", text: n })),
    );
  }
}

function deviceRow(d, columns) {
  return el("tr", { "data-device-id": d.device_id }, ...columns.map((c) => el("td", {}, c(d))));
}

async function loadFleet() {
  const fleet = await apiJson("/api/v1/fleet");
  bars(document.getElementById("devices-by-state"), fleet.devices_by_state, "devstate");
  bars(document.getElementById("alerts-by-severity"), fleet.alerts_by_severity, "sev");
  const silent = fleet.silent_devices || [];
  document.querySelector("#silent tbody").replaceChildren(
    ...silent.map((d) =>
      deviceRow(typeof d === "string" ? { device_id: d } : d, [
        (x) => deviceLink(x.device_id),
        (x) => x.device_type || "",
        (x) => x.site || "",
        (x) => (x.last_seen_ms ? fmtAgo(x.last_seen_ms) : ""),
      ]),
    ),
  );
  document.getElementById("no-silent").hidden = silent.length > 0;
  document.getElementById("fleet-updated").textContent = "updated " + fmtTime(Date.now());
}

async function search() {
  const q = document.getElementById("search").value.trim();
  const result = await apiJson("/api/v1/devices" + (q ? "?q=" + encodeURIComponent(q) : ""));
  document.querySelector("#devices tbody").replaceChildren(
    ...result.devices.map((d) =>
      deviceRow(d, [
        (x) => deviceLink(x.device_id),
        (x) => x.device_type,
        (x) => x.site || "",
        (x) => x.model || "",
        (x) => x.location || "",
        (x) => fmtAgo(x.last_seen_ms),
        (x) => (x.open_alerts ? el("strong", { text: x.open_alerts }) : "0"),
      ]),
    ),
  );
}

function start() {
  clearError();
  loadFleet().catch(showError);
  search().catch(showError);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search().catch(showError);
  });
  setInterval(() => {
    if (apiKey()) loadFleet().catch(showError);
  }, 15000);
  withKey(start);
});
