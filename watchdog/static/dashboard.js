// Continuity dashboard: polls /api/status (same origin) and posts actions with the API token.
// Every value from data goes into the page with textContent, never as HTML.
"use strict";

const REFRESH_MS = 3000;
const TOKEN_KEY = "continuity.apiToken";
const $ = (id) => document.getElementById(id);

function setText(id, value) {
  const el = $(id);
  if (el) el.textContent = value === undefined || value === null || value === "" ? "-" : String(value);
}

function duration(seconds) {
  if (typeof seconds !== "number" || !isFinite(seconds)) return "-";
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h ${m}m`;
  if (h) return `${h}h ${m}m`;
  return m ? `${m}m ${s % 60}s` : `${s % 60}s`;
}

function fillList(id, items, empty) {
  const list = $(id);
  list.replaceChildren();
  if (!items.length && empty) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = empty;
    list.appendChild(li);
  }
  for (const item of items) {
    const li = document.createElement("li");
    li.textContent = item;
    list.appendChild(li);
  }
}

const RECOMMENDATIONS = {
  should_clear_session: "Clear the session (it is too big or corrupt)",
  should_reconnect: "Reconnect WhatsApp",
  needs_qr_scan: "Scan the QR code with your phone",
};

let qrShown = false;

function render(status) {
  const wd = status.watchdog || {};
  const worker = status.worker || {};
  const beat = status.heartbeat || {};
  const wa = beat.whatsapp || {};
  const health = status.health || {};
  const badge = $("health");
  badge.dataset.level = health.session_health || "unknown";
  badge.textContent = health.session_health || "unknown";
  setText("updated", `updated ${new Date().toLocaleTimeString()}`);
  setText("watchdog-state", wd.pid ? `${wd.state} (pid ${wd.pid})` : wd.state);
  setText("worker-state", worker.alive ? `alive (pid ${worker.pid})` : "not running");
  setText("whatsapp-state", wa.state);
  setText("whatsapp-quality", wa.quality);
  setText("uptime", duration(beat.uptime_s));
  setText("restarts", `${wd.restarts_total ?? 0} total, ${wd.restarts_in_window ?? 0}/${wd.restart_limit ?? "-"} in window`);
  setText("reconnects", wa.reconnect_attempts ?? 0);
  setText("browser-restarts", wa.browser_restarts ?? 0);
  setText("tokens-active", (beat.tokens || {}).active ?? (status.tokens_preview || {}).count);
  setText("outbox-pending", (beat.outbox || {}).pending);
  setText("heartbeat-age", worker.heartbeat_age_s == null ? "none" : `${worker.heartbeat_age_s.toFixed(1)} s ago`);
  fillList("reasons", [...(health.reasons || []), ...(health.warnings || []).map((w) => `warning: ${w}`)].map(String));
  const recs = health.recommendations || {};
  fillList("recommendations", Object.keys(recs).filter((k) => recs[k])
    .map((k) => (typeof recs[k] === "string" ? recs[k] : RECOMMENDATIONS[k] || k)), "none");
  const needsQr = Boolean(recs.needs_qr_scan) || wa.state === "qr";
  $("qr-card").hidden = !needsQr;
  if (needsQr) {
    $("qr").src = `/api/whatsapp/qr.png?t=${Date.now()}`;
  } else if (qrShown) {
    $("qr").removeAttribute("src");
  }
  qrShown = needsQr;
  renderTokens((status.tokens_preview || {}).items || []);
}

function renderTokens(items) {
  const body = $("tokens").tBodies[0];
  body.replaceChildren();
  for (const token of items) {
    const row = body.insertRow();
    for (const key of ["id", "symbol", "chain"]) row.insertCell().textContent = String(token[key] ?? "");
  }
}

function describeEvent(event) {
  const time = new Date((event.ts || 0) * 1000).toLocaleTimeString();
  const extra = Object.entries(event)
    .filter(([k]) => !["ts", "source", "event"].includes(k))
    .slice(0, 4)
    .map(([k, v]) => `${k}=${String(typeof v === "object" ? JSON.stringify(v) : v).slice(0, 80)}`)
    .join(" ");
  return `${time} ${event.source || ""} ${event.event || ""} ${extra}`.slice(0, 300);
}

async function refresh() {
  try {
    const response = await fetch("/api/status", { cache: "no-store" });
    render(await response.json());
    const since = Date.now() / 1000 - 3600;
    const events = await (await fetch(`/api/events?since=${since}&limit=15`, { cache: "no-store" })).json();
    fillList("events", (events.events || []).reverse().map(describeEvent), "no events in the last hour");
  } catch (error) {
    const badge = $("health");
    badge.dataset.level = "down";
    badge.textContent = "watchdog unreachable";
  }
}

async function runAction(button) {
  const action = button.dataset.action;
  const token = localStorage.getItem(TOKEN_KEY) || "";
  if (!token) {
    setText("action-result", "Paste the API token first (run/api_token in the instance directory).");
    return;
  }
  if (action === "clear-session" && !confirm("Clear the WhatsApp session? A new QR scan will be needed.")) return;
  button.disabled = true;
  setText("action-result", `${action}: sent…`);
  try {
    const response = await fetch("/api/whatsapp/persistent-connection", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ action }),
    });
    const body = await response.json();
    const message = body.message || body.error || "";
    setText("action-result", `${action}: ${response.status} ${message}`);
  } catch (error) {
    setText("action-result", `${action}: failed (${error})`);
  } finally {
    button.disabled = false;
    refresh();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = localStorage.getItem(TOKEN_KEY) || "";
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("token").value.trim());
    setText("action-result", "token saved in this browser");
  });
  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => runAction(button));
  }
  refresh();
  setInterval(refresh, REFRESH_MS);
});
