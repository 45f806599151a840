// A device page: facts from the registry, and per capability a chart of its readings over
// the chosen range with the anomaly points and the device's alert intervals.
"use strict";

const deviceId = decodeURIComponent(window.location.pathname.slice("/devices/".length));
let refreshTimer = null;

function chosenRange() {
  const span = Number(document.getElementById("range").value);
  const endInput = document.getElementById("end").value;
  const endMs = endInput ? Date.parse(endInput + ":00Z") : Date.now();
  return { startMs: endMs - span, endMs, live: !endInput };
}

function showFacts(device) {
  const facts = document.getElementById("device-facts");
  const items = [
    ["Kind", device.device_type],
    ["Site", device.site],
    ["Model", device.model],
    ["Location", device.location],
    ["Installed", device.install_date],
    ["Tags", Array.isArray(device.tags) ? device.tags.join(", ") : device.tags],
    ["Last seen", device.last_seen_ms ? fmtTime(device.last_seen_ms) + " (" + fmtAgo(device.last_seen_ms) + ")" : "never"],
    ["Open alerts", device.open_alerts],
    ["Signals", Array.isArray(device.capabilities) ? device.capabilities.length : undefined],
  ];
  facts.replaceChildren();
  for (const [name, value] of items) {
    if (value === undefined || value === null || value === "") continue;
    facts.append(el("dt", { text: name }), el("dd", { text: value }));
  }
}

// The signal choice lists the device's capabilities (kept when the list is refreshed).
function offerSignals(capabilities) {
  const select = document.getElementById("signal");
  const known = [...select.options].slice(1).map((o) => o.value);
  if (known.join() === capabilities.join()) return;
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "", text: "all" }), ...capabilities.map((c) => el("option", { value: c, text: c })));
  select.value = capabilities.includes(chosen) ? chosen : "";
}

async function load() {
  clearError();
  const { startMs, endMs, live } = chosenRange();
  const id = encodeURIComponent(deviceId);
  const span = "start_ms=" + startMs + "&end_ms=" + endMs;
  const signal = document.getElementById("signal").value;
  const only = signal ? "&capability=" + encodeURIComponent(signal) : "";
  const [device, series, anomalies, alerts] = await Promise.all([
    apiJson("/api/v1/devices/" + id),
    apiJson("/api/v1/devices/" + id + "/series?resolution=auto&" + span + only),
    apiJson("/api/v1/devices/" + id + "/anomalies?" + span),
    apiJson("/api/v1/alerts?limit=500&device_id=" + id),
  ]);
  showFacts(device);
  offerSignals(device.capabilities || []);
  document.getElementById("resolution").textContent =
    "resolution: " + series.resolution + ", " + series.points.length + " points";
  const byCapability = new Map();
  for (const p of series.points) {
    if (!byCapability.has(p.capability)) byCapability.set(p.capability, []);
    byCapability.get(p.capability).push(p);
  }
  const charts = document.getElementById("charts");
  charts.replaceChildren();
  // Capabilities with an alert of their own, then those with anomalies, come first.
  const weight = (capability) =>
    (alerts.alerts.some((a) => a.capability === capability) ? 1e6 : 0) +
    anomalies.anomalies.filter((a) => a.capability === capability).length;
  const order = [...byCapability.keys()].sort((a, b) => weight(b) - weight(a) || (a < b ? -1 : 1));
  for (const capability of order) {
    const points = byCapability.get(capability).sort((a, b) => a.ts_ms - b.ts_ms);
    const own = anomalies.anomalies.filter((a) => a.capability === capability);
    const figure = el("figure", { className: "chart-box" }, el("figcaption", { text: capability }));
    figure.append(drawChart({ capability, points, anomalies: own, alerts: alerts.alerts, startMs, endMs }));
    charts.append(figure);
  }
  document.getElementById("no-data").hidden = byCapability.size > 0;
  clearTimeout(refreshTimer);
  if (live) refreshTimer = setTimeout(() => load().catch(showError), 30000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("device-title").textContent = deviceId;
  document.title = deviceId + " · EnviroStream";
  document.getElementById("range").addEventListener("change", () => load().catch(showError));
  document.getElementById("end").addEventListener("change", () => load().catch(showError));
  document.getElementById("signal").addEventListener("change", () => load().catch(showError));
  document.getElementById("now").addEventListener("click", () => {
    document.getElementById("end").value = "";
    load().catch(showError);
  });
  withKey(() => load().catch(showError));
});
