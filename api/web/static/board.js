// The alert board: open alerts from /api/v1/alerts, kept current by /api/v1/alerts/stream.
"use strict";

const SEVERITY_RANK = { CRITICAL: 0, WARNING: 1, INFO: 2 };
const STATE_RANK = { FIRING: 0, ACKNOWLEDGED: 1, RESOLVED: 2 };
const RESOLVED_LINGER_MS = 30000; // a resolved alert stays visible this long (unless kept)
const RECONNECT_MS = [1000, 2000, 5000, 10000];

const alerts = new Map(); // alert_id → latest alert version seen
const pending = new Map(); // alert_id → feedback sent, waiting for the new version
let streamAbort = null;
let generation = 0; // bumped when a new key is entered: older stream loops stop

function sortKey(a) {
  return [SEVERITY_RANK[a.severity] ?? 9, STATE_RANK[a.state] ?? 9, -a.last_seen_ms];
}

function compare(a, b) {
  const ka = sortKey(a);
  const kb = sortKey(b);
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] - kb[i];
  return a.alert_id < b.alert_id ? -1 : 1;
}

// Keep the newest version of each alert; true when `alert` changed what we show.
function remember(alert) {
  const known = alerts.get(alert.alert_id);
  if (known && known.version > alert.version) return false;
  alerts.set(alert.alert_id, alert);
  if (known && known.version < alert.version) pending.delete(alert.alert_id);
  return true;
}

function visible(alert) {
  if (alert.state !== "RESOLVED") return true;
  if (document.getElementById("show-resolved").checked) return true;
  return Date.now() - (alert.seen_resolved_at || 0) < RESOLVED_LINGER_MS;
}

function actionButton(alert, action, label, enabled) {
  return el("button", {
    type: "button",
    className: "action " + action,
    "data-action": action,
    disabled: !enabled || pending.has(alert.alert_id),
    onclick: () => sendFeedback(alert.alert_id, action),
    text: label,
  });
}

function row(alert, fresh) {
  const note = pending.get(alert.alert_id);
  const tr = el(
    "tr",
    {
      "data-alert-id": alert.alert_id,
      "data-state": alert.state,
      "data-version": alert.version,
      className: [alert.state === "RESOLVED" ? "resolved" : "", fresh ? "fresh" : ""].join(" ").trim() || null,
    },
    el("td", {}, badge("sev", alert.severity)),
    el("td", { className: "state" }, badge("state", alert.state)),
    el("td", {}, deviceLink(alert.device_id), el("div", { className: "muted small", text: alert.device_type })),
    el("td", { className: "nowrap", text: alert.site }),
    el("td", {}, alert.rule, el("div", { className: "muted small", text: alert.capability })),
    el("td", { className: "summary", text: alert.summary }),
    el(
      "td",
      { className: "nowrap", title: fmtTime(alert.first_seen_ms) + " – " + fmtTime(alert.last_seen_ms) },
      fmtAgo(alert.last_seen_ms),
      el("div", { className: "muted small", text: "since " + fmtAgo(alert.first_seen_ms) }),
    ),
    el("td", { className: "num", text: alert.duplicates }),
    el("td", { className: "num", text: alert.version }),
    el(
      "td",
      { className: "actions" },
      actionButton(alert, "ack", "Acknowledge", alert.state === "FIRING"),
      actionButton(alert, "false-positive", "False positive", alert.state !== "RESOLVED"),
      note ? el("div", { className: "muted small pending", text: note }) : null,
    ),
  );
  return tr;
}

function render(freshIds) {
  const tbody = document.querySelector("#alerts tbody");
  const shown = [...alerts.values()].filter(visible).sort(compare);
  tbody.replaceChildren(...shown.map((a) => row(a, freshIds && freshIds.has(a.alert_id))));
  const open = shown.filter((a) => a.state !== "RESOLVED").length;
  document.getElementById("alert-count").textContent = open + " open";
  document.getElementById("empty").hidden = shown.length > 0;
}

async function loadOpen() {
  const lists = await Promise.all(
    ["FIRING", "ACKNOWLEDGED"].map((state) => apiJson("/api/v1/alerts?limit=500&state=" + state)),
  );
  for (const [id, alert] of alerts) if (alert.state !== "RESOLVED") alerts.delete(id);
  for (const list of lists) for (const alert of list.alerts) remember(alert);
  render();
}

function received(alert) {
  if (alert.state === "RESOLVED") alert.seen_resolved_at = Date.now();
  if (!remember(alert)) return;
  render(new Set([alert.alert_id])); // the new or changed row is highlighted briefly
}

function setLive(state, text) {
  const status = document.getElementById("live-status");
  status.hidden = false;
  status.dataset.state = state;
  status.textContent = text;
}

// Server-Sent Events read with fetch(): EventSource cannot send the Authorization header.
async function follow(signal) {
  const response = await api("/api/v1/alerts/stream", { headers: { Accept: "text/event-stream" }, signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  setLive("connected", "connecting to the alert stream…");
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      handleEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
}

function handleEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (event === "following") setLive("live", "live");
  else if (event === "dropped") setLive("reconnecting", "too slow, reconnecting…");
  else if (event === "message" && data.length) received(JSON.parse(data.join("\n")));
}

async function streamForever(mine) {
  let attempt = 0;
  while (mine === generation) {
    streamAbort = new AbortController();
    try {
      await follow(streamAbort.signal);
      attempt = 0;
    } catch (error) {
      if (error instanceof AuthError) return;
      attempt += 1;
    }
    const wait = RECONNECT_MS[Math.min(attempt, RECONNECT_MS.length - 1)];
    if (mine !== generation) return;
    setLive("reconnecting", "reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, wait));
    try {
      await loadOpen(); // whatever changed while the stream was down
    } catch (error) {
      showError(error);
    }
  }
}

async function sendFeedback(alertId, action) {
  const operatorInput = document.getElementById("operator");
  const operator = operatorInput.value.trim();
  if (!operator) {
    showError(new Error("Enter your name as operator before acknowledging or marking a false positive."));
    operatorInput.focus();
    return;
  }
  localStorage.setItem(OPERATOR_STORE, operator);
  clearError();
  const comment = document.getElementById("comment").value.trim();
  try {
    await api("/api/v1/alerts/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ alert_id: alertId, action, operator, comment }),
    });
    pending.set(alertId, (action === "ack" ? "acknowledgement" : "false positive") + " sent by " + operator);
    render();
  } catch (error) {
    showError(error);
  }
}

function start() {
  clearError();
  generation += 1;
  const mine = generation;
  if (streamAbort) streamAbort.abort();
  loadOpen().then(() => streamForever(mine), showError);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("operator").value = localStorage.getItem(OPERATOR_STORE) || "";
  document.getElementById("show-resolved").addEventListener("change", () => render());
  setInterval(() => render(), 15000); // ages ("2 min ago") and resolved rows leaving
  withKey(start);
});
