// A small SVG time-series chart: one capability's values (line, min–max band when the
// points are aggregates), its anomaly points and the device's alert intervals.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const CHART = { width: 960, height: 200, left: 64, right: 12, top: 10, bottom: 26 };

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceTicks(lo, hi, count) {
  const span = hi - lo || 1;
  const step0 = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) || step0;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) ticks.push(+v.toPrecision(12));
  return ticks;
}

function timeLabel(ms, spanMs) {
  const iso = new Date(ms).toISOString();
  if (spanMs <= 2 * 86400000) return iso.slice(11, 16);
  return iso.slice(5, 10) + " " + iso.slice(11, 13) + "h";
}

// Break the line where the gap between points is much longer than usual (a silent device).
function linePath(points, x, y) {
  const steps = [];
  for (let i = 1; i < points.length; i++) steps.push(points[i].ts_ms - points[i - 1].ts_ms);
  steps.sort((a, b) => a - b);
  const typical = steps.length ? steps[Math.floor(steps.length / 2)] : 0;
  const gap = Math.max(typical * 5, 1);
  let d = "";
  points.forEach((p, i) => {
    const jump = i === 0 || p.ts_ms - points[i - 1].ts_ms > gap;
    d += (jump ? "M" : "L") + x(p.ts_ms).toFixed(1) + " " + y(p.value).toFixed(1);
  });
  return d;
}

function bandPath(points, x, y) {
  if (!points.length) return "";
  const upper = points.map((p) => x(p.ts_ms).toFixed(1) + " " + y(p.max).toFixed(1));
  const lower = points.slice().reverse().map((p) => x(p.ts_ms).toFixed(1) + " " + y(p.min).toFixed(1));
  return "M" + upper.join("L") + "L" + lower.join("L") + "Z";
}

// Returns the <svg>; data-points / data-anomalies / data-alerts count what was plotted.
function drawChart({ capability, points, anomalies, alerts, startMs, endMs }) {
  const { width, height, left, right, top, bottom } = CHART;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const aggregated = points.some((p) => p.count > 1);
  const values = points.map((p) => p.value).concat(anomalies.map((a) => a.value));
  if (aggregated) for (const p of points) values.push(p.min, p.max);
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (!isFinite(lo) || !isFinite(hi)) [lo, hi] = [0, 1];
  if (lo === hi) [lo, hi] = [lo - 1, hi + 1];
  const pad = (hi - lo) * 0.06;
  lo -= pad;
  hi += pad;
  const x = (ms) => left + ((ms - startMs) / (endMs - startMs)) * plotW;
  const y = (v) => top + (1 - (v - lo) / (hi - lo)) * plotH;

  const root = svg("svg", {
    class: "chart",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": capability + " over the chosen range",
    "data-capability": capability,
    "data-points": points.length,
    "data-anomalies": anomalies.length,
  });
  const clipId = "clip-" + capability;
  const defs = svg("defs");
  const clip = svg("clipPath", { id: clipId });
  clip.append(svg("rect", { x: left, y: top, width: plotW, height: plotH }));
  defs.append(clip);
  root.append(defs);

  const intervals = svg("g", { class: "alerts", "clip-path": `url(#${clipId})` });
  let shownAlerts = 0;
  for (const alert of alerts) {
    const from = Math.max(alert.first_seen_ms, startMs);
    const to = Math.min(alert.resolved_at_ms ?? endMs, endMs);
    if (to < startMs || from > endMs) continue;
    const own = alert.capability === capability;
    const rect = svg("rect", {
      class: "alert-interval sev-" + alert.severity.toLowerCase() + (own ? " own" : ""),
      x: x(from),
      y: top,
      width: Math.max(x(to) - x(from), 2),
      height: plotH,
      "data-alert-id": alert.alert_id,
    });
    rect.append(svg("title", {}, `${alert.severity} ${alert.rule} (${alert.capability}) ${alert.state}: ${alert.summary}`));
    intervals.append(rect);
    shownAlerts += 1;
  }
  root.setAttribute("data-alerts", shownAlerts);
  root.append(intervals);

  const axes = svg("g", { class: "axes" });
  for (const v of niceTicks(lo, hi, 4)) {
    axes.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: y(v), y2: y(v) }));
    axes.append(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, String(+v.toPrecision(6))));
  }
  const span = endMs - startMs;
  for (let i = 0; i <= 5; i++) {
    const t = startMs + (span * i) / 5;
    axes.append(svg("text", { x: x(t), y: height - 6, "text-anchor": i === 0 ? "start" : i === 5 ? "end" : "middle" }, timeLabel(t, span)));
  }
  axes.append(svg("rect", { class: "frame", x: left, y: top, width: plotW, height: plotH }));
  root.append(axes);

  const plot = svg("g", { "clip-path": `url(#${clipId})` });
  if (aggregated) plot.append(svg("path", { class: "band", d: bandPath(points, x, y) }));
  plot.append(svg("path", { class: "series", d: linePath(points, x, y), "data-points": points.length }));
  for (const a of anomalies) {
    const dot = svg("circle", { class: "anomaly", cx: x(a.ts_ms), cy: y(a.value), r: 2.5 });
    dot.append(svg("title", {}, `${fmtTime(a.ts_ms)} ${a.detector}: score ${a.score.toFixed(3)} > ${a.threshold.toFixed(3)} (value ${a.value})`));
    plot.append(dot);
  }
  root.append(plot);
  return root;
}
