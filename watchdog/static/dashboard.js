// Continuity dashboard: polls /api/status (same origin) and posts actions with the API token (sent with every
// request once saved: an API listening beyond loopback wants it for every GET but /healthz and /metrics).
// Every value from data goes into the page with textContent, never as HTML. panels.js draws the timeline and outbox.
"use strict";

const REFRESH_MS = 3000;
const TIMELINE_MS = 60000;
const EVENT_LIMIT = 200;
const TOKEN_KEY = "continuity.apiToken";
const $ = (id) => document.getElementById(id);

function authHeaders(extra) {
  const token = localStorage.getItem(TOKEN_KEY) || "";
  return token ? { ...(extra || {}), Authorization: `Bearer ${token}` } : { ...(extra || {}) };
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store", headers: authHeaders() });
  if (response.status === 401) throw new Error("token");
  return response.json();
}

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
let qrUrl = null;

async function loadQr() {
  // fetched (not <img src>) so that the token goes with it; shown as a blob: URL (CSP img-src 'self' blob:)
  const response = await fetch(`/api/whatsapp/qr.png?t=${Date.now()}`, { cache: "no-store", headers: authHeaders() });
  if (!response.ok) return;
  const url = URL.createObjectURL(await response.blob());
  $("qr").src = url;
  if (qrUrl) URL.revokeObjectURL(qrUrl);
  qrUrl = url;
}

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
  const paced = (beat.sending || {}).paced_until;  // over a sending limit ([whatsapp] max_per_*): messages wait
  setText("outbox-pending", `${(beat.outbox || {}).pending ?? "-"}` +
    (typeof paced === "number" ? ` (paced until ${new Date(paced * 1000).toLocaleTimeString()})` : ""));
  const pairing = $("pairing-code");  // `continuity whatsapp link --phone`: the code to type on the phone
  if (pairing) pairing.textContent = wa.pairing_code ? `Or type this code on the phone: ${wa.pairing_code}` : "";
  setText("heartbeat-age", worker.heartbeat_age_s == null ? "none" : `${worker.heartbeat_age_s.toFixed(1)} s ago`);
  fillList("reasons", [...(health.reasons || []), ...(health.warnings || []).map((w) => `warning: ${w}`)].map(String));
  const recs = health.recommendations || {};
  fillList("recommendations", Object.keys(recs).filter((k) => recs[k])
    .map((k) => (typeof recs[k] === "string" ? recs[k] : RECOMMENDATIONS[k] || k)), "none");
  const needsQr = Boolean(recs.needs_qr_scan) || wa.state === "qr";
  $("qr-card").hidden = !needsQr;
  if (needsQr) {
    loadQr().catch(() => {});
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

function fillEvents(events) {
  // the number is a span of its own, as wide as it needs (list markers were clipped past two digits)
  const list = $("events");
  list.replaceChildren();
  if (!events.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "no events in the last hour";
    list.appendChild(li);
  }
  events.forEach((event, i) => {
    const li = document.createElement("li");
    const number = document.createElement("span");
    number.className = "n";
    number.textContent = String(i + 1);
    li.append(number, describeEvent(event));
    list.appendChild(li);
  });
}

let timelineAt = 0;

async function refresh() {
  try {
    render(await getJson("/api/status"));
    const since = Date.now() / 1000 - 3600;
    const events = await getJson(`/api/events?since=${since}&limit=${EVENT_LIMIT}`);
    fillEvents((events.events || []).reverse());
  } catch (error) {
    const badge = $("health");
    badge.dataset.level = "down";
    badge.textContent = error.message === "token" ? "API token needed (Actions)" : "watchdog unreachable";
  }
  refreshPanels();
}

async function refreshPanels() {
  if (Date.now() - timelineAt >= TIMELINE_MS) {
    try {
      drawTimeline(await getJson("/api/timeline"));
      timelineAt = Date.now();
    } catch (error) { /* drawn at the next refresh */ }
  }
  if (!localStorage.getItem(TOKEN_KEY)) {
    renderOutbox(null, outboxAction);
    return;
  }
  try {
    renderOutbox(await getJson("/api/outbox"), outboxAction);
  } catch (error) {
    renderOutbox(null, outboxAction);
  }
}

async function outboxAction(op, id, button) {
  button.disabled = true;
  try {
    const response = await fetch(`/api/outbox/${op}`, {
      method: "POST", headers: authHeaders({ "Content-Type": "application/json" }), body: JSON.stringify({ id }),
    });
    const body = await response.json();
    setText("action-result", `${op} ${id}: ${response.status} ${body.message || body.error || ""}`);
  } catch (error) {
    setText("action-result", `${op} ${id}: failed (${error})`);
  } finally {
    refresh();
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
      headers: authHeaders({ "Content-Type": "application/json" }),
      // link-phone: the number of the field beside its button (the code then shows on the QR card)
      body: JSON.stringify(action === "link-phone" ? { action, params: { phone: $("link-phone").value.trim() } }
        : { action }),
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
    refresh();
  });
  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => runAction(button));
  }
  refresh();
  setInterval(refresh, REFRESH_MS);
});
