// Continuity dashboard panels: the 24-hour timeline (inline SVG, drawn here, no chart library) and the outbox.
// Loaded before dashboard.js, which calls drawTimeline() and renderOutbox(). Data goes in with textContent only.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const TL = { width: 960, left: 4, right: 4, bandY: 18, bandH: 22, markY: 46, markH: 14, barTop: 68, barH: 56, axisY: 138 };
const STATE_CLASS = {
  ready: "ready", qr: "waiting", loading: "waiting", starting: "waiting", disabled: "waiting",
  offline: "trouble", conflict: "trouble", unrecognized: "trouble", logged_out: "trouble",
  down: "down", crashed: "down", browser_dead: "down",
};

function svg(name, attrs, parent) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  if (parent) parent.appendChild(el);
  return el;
}

function titled(el, text) {
  svg("title", {}, el).textContent = text;
  return el;
}

function clock(ts) {
  return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function drawTimeline(data) {
  const box = document.getElementById("timeline");
  const span = Math.max(1, data.end - data.start);
  const inner = TL.width - TL.left - TL.right;
  const x = (ts) => TL.left + (Math.min(Math.max(ts, data.start), data.end) - data.start) / span * inner;
  const root = svg("svg", { viewBox: `0 0 ${TL.width} ${TL.axisY + 6}`, role: "img" });
  titled(root, "WhatsApp states, restarts and messages sent in the last 24 hours");
  for (let hour = 0; hour <= 24; hour += 3) {
    const at = data.start + hour * 3600;
    svg("line", { class: "grid", x1: x(at), x2: x(at), y1: TL.bandY - 4, y2: TL.barTop + TL.barH }, root);
    const label = svg("text", { class: "axis", x: x(at), y: TL.axisY, "text-anchor": hour === 0 ? "start" : hour === 24 ? "end" : "middle" }, root);
    label.textContent = hour === 24 ? "now" : clock(at);
  }
  svg("text", { class: "axis", x: TL.left, y: TL.bandY - 6 }, root).textContent = "WhatsApp";
  for (const band of data.bands || []) {
    const width = Math.max(1, x(band.end) - x(band.start));
    const state = String(band.state);
    const rect = svg("rect", { class: `band ${STATE_CLASS[state] || "trouble"}`, "data-state": state,
      x: x(band.start), y: TL.bandY, width, height: TL.bandH }, root);
    titled(rect, `${state}: ${clock(band.start)} - ${clock(band.end)}`);
  }
  for (const ts of data.worker_restarts || []) {
    titled(svg("line", { class: "worker-restart", x1: x(ts), x2: x(ts), y1: TL.markY, y2: TL.markY + TL.markH }, root),
      `worker restart at ${clock(ts)}`);
  }
  for (const mark of data.browser_restarts || []) {
    const cx = x(mark.ts), top = TL.markY;
    titled(svg("polygon", { class: "browser-restart", points: `${cx - 4},${top} ${cx + 4},${top} ${cx},${top + 8}` }, root),
      `browser ${mark.kind === "recycle" ? "recycled" : "restart"} at ${clock(mark.ts)}`);
  }
  const sent = data.sent || [];
  const most = Math.max(1, ...sent);
  const binW = inner / Math.max(1, sent.length);
  sent.forEach((count, i) => {
    if (!count) return;
    const height = Math.max(1, count / most * TL.barH);
    const at = data.start + i * data.bin_s;
    titled(svg("rect", { class: "sent-bar", x: TL.left + i * binW, y: TL.barTop + TL.barH - height,
      width: Math.max(1, binW - 1), height }, root), `${count} sent ${clock(at)} - ${clock(at + data.bin_s)}`);
  });
  svg("text", { class: "axis", x: TL.left, y: TL.barTop + 8 }, root).textContent = `sent (max ${most} / 10 min)`;
  box.replaceChildren(root);
}

function renderOutbox(view, onAction) {
  const body = document.getElementById("outbox").tBodies[0];
  const note = document.getElementById("outbox-note");
  body.replaceChildren();
  if (!view || !view.available) {
    note.textContent = view ? "No outbox view yet (the worker writes it when it runs)." : "Paste the API token (Actions) to see the messages.";
    return;
  }
  const counts = view.counts || {};
  const age = typeof view.age_s === "number" ? ` (as of ${Math.round(view.age_s)} s ago)` : "";
  note.textContent = `${counts.pending ?? 0} pending, ${counts.claimed ?? 0} sending, ${counts.failed ?? 0} failed, ${counts.sent ?? 0} sent${age}`;
  for (const message of [...(view.pending || []), ...(view.failed || [])]) {
    const row = body.insertRow();
    row.dataset.id = String(message.id);
    const state = message.cancelled ? "cancelled" : String(message.state);
    const waiting = message.state === "pending" && message.retry_at ? ` (retry ${clock(message.retry_at)})` : "";
    row.insertCell().textContent = state + waiting;
    row.insertCell().textContent = String(message.phone ?? "");
    row.insertCell().textContent = String(message.text ?? "");
    row.insertCell().textContent = String(message.attempts ?? 0);
    const reason = row.insertCell();
    reason.className = "reason";
    reason.textContent = String(message.reason ?? "");
    const actions = row.insertCell();
    const buttons = message.state === "pending" ? (message.retry_at ? ["retry", "cancel"] : ["cancel"])
      : message.state === "failed" ? ["retry"] : [];
    for (const op of buttons) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.op = op;
      button.textContent = op === "retry" ? "Retry" : "Cancel";
      button.addEventListener("click", () => onAction(op, String(message.id), button));
      actions.appendChild(button);
    }
  }
}
