/* The simulated WhatsApp Web page. Same-origin requests only; markup modelled on the real site (2026). */
(function () {
  "use strict";

  var STRINGS = {
    en: {
      qr_aria: "Scan this QR code to link a device!",
      qr_title: "Steps to log in",
      qr_steps: ["Open WhatsApp on your phone", "On Android tap Menu, on iPhone tap Settings",
        "Tap Linked devices, then Link device", "Scan the QR code to confirm"],
      qr_reload: "Click to reload QR code",
      loading: "Loading your chats",
      e2e: "End-to-end encrypted",
      chats: "Chats",
      chat_list: "Chat list",
      search: "Search input textbox",
      search_ph: "Search or start a new chat",
      compose: "Type a message",
      send: "Send",
      voice: "Voice message",
      starting: "Starting chat",
      invalid: "Phone number shared via url is invalid.",
      ok: "OK",
      conflict: "WhatsApp is open on another computer or browser. Click \"Use here\" to use WhatsApp in this window.",
      another_tab: "WhatsApp is open in another window. Click \"Use here\" to use WhatsApp in this window.",
      use_here: "Use here",
      log_out: "Log out",
      close: "Close",
      offline: "Computer not connected",
      offline_sub: "Make sure your computer has an active Internet connection.",
      phone_offline: "Trying to reach phone",
      phone_offline_sub: "Make sure your phone has an active Internet connection.",
      pending: " Pending ",
      sent: " Sent ",
      delivered: " Delivered ",
      failed: " Failed to send ",
      you: "You",
      intro_title: "WhatsApp Web",
      intro_sub: "Send and receive messages without keeping your phone online.",
      no_chats: "No chats yet",
      update: "A new version of WhatsApp is available.",
      later: "Later",
      reload: "Reload"
    },
    de: {
      qr_aria: "Scanne diesen QR-Code, um ein Gerät zu verknüpfen!",
      qr_title: "Schritte zur Anmeldung",
      qr_steps: ["Öffne WhatsApp auf deinem Telefon", "Tippe auf Android auf Menü, auf dem iPhone auf Einstellungen",
        "Tippe auf Verknüpfte Geräte und dann auf Gerät hinzufügen", "Scanne den QR-Code zur Bestätigung"],
      qr_reload: "Klicke, um den QR-Code neu zu laden",
      loading: "Deine Chats werden geladen",
      e2e: "Ende-zu-Ende-verschlüsselt",
      chats: "Chats",
      chat_list: "Chatliste",
      search: "Sucheingabefeld",
      search_ph: "Suchen oder neuen Chat beginnen",
      compose: "Gib eine Nachricht ein.",
      send: "Senden",
      voice: "Sprachnachricht",
      starting: "Chat wird gestartet",
      invalid: "Die über die URL geteilte Telefonnummer ist ungültig.",
      ok: "OK",
      conflict: "WhatsApp ist auf einem anderen Computer oder in einem anderen Browser geöffnet. Klicke auf " +
        "„Hier verwenden“, um WhatsApp in diesem Fenster zu verwenden.",
      another_tab: "WhatsApp ist in einem anderen Fenster geöffnet. Klicke auf „Hier verwenden“, um WhatsApp in " +
        "diesem Fenster zu verwenden.",
      use_here: "Hier verwenden",
      log_out: "Abmelden",
      close: "Schließen",
      offline: "Computer nicht verbunden",
      offline_sub: "Stelle sicher, dass dein Computer eine aktive Internetverbindung hat.",
      phone_offline: "Verbindung zum Telefon wird hergestellt",
      phone_offline_sub: "Stelle sicher, dass dein Telefon eine aktive Internetverbindung hat.",
      pending: " Ausstehend ",
      sent: " Gesendet ",
      delivered: " Zugestellt ",
      failed: " Senden fehlgeschlagen ",
      you: "Du",
      intro_title: "WhatsApp Web",
      intro_sub: "Sende und empfange Nachrichten, ohne dass dein Telefon online sein muss.",
      no_chats: "Noch keine Chats",
      update: "Eine neue Version von WhatsApp ist verfügbar.",
      later: "Später",
      reload: "Neu laden"
    },
    pt: {
      qr_aria: "Escaneie este código QR para conectar um aparelho!",
      qr_title: "Etapas para entrar",
      qr_steps: ["Abra o WhatsApp no seu celular", "Toque em Mais opções no Android ou em Configurações no iPhone",
        "Toque em Dispositivos conectados e, em seguida, em Conectar dispositivo",
        "Escaneie o código QR para confirmar"],
      qr_reload: "Clique para recarregar o código QR",
      loading: "Carregando suas conversas",
      e2e: "Protegido com a criptografia de ponta a ponta",
      chats: "Conversas",
      chat_list: "Lista de conversas",
      search: "Caixa de texto de pesquisa",
      search_ph: "Pesquisar ou começar uma nova conversa",
      compose: "Digite uma mensagem",
      send: "Enviar",
      voice: "Mensagem de voz",
      starting: "Iniciando conversa",
      invalid: "O número de telefone compartilhado por URL é inválido.",
      ok: "OK",
      conflict: "O WhatsApp está aberto em outro computador ou navegador. Clique em \"Usar aqui\" para usar o " +
        "WhatsApp nesta janela.",
      another_tab: "O WhatsApp está aberto em outra janela. Clique em \"Usar aqui\" para usar o WhatsApp nesta janela.",
      use_here: "Usar aqui",
      log_out: "Desconectar",
      close: "Fechar",
      offline: "Computador não conectado",
      offline_sub: "Verifique se o seu computador tem uma conexão ativa com a Internet.",
      phone_offline: "Tentando conectar ao celular",
      phone_offline_sub: "Verifique se o seu celular tem uma conexão ativa com a Internet.",
      pending: " Pendente ",
      sent: " Enviada ",
      delivered: " Entregue ",
      failed: " Falha no envio ",
      you: "Você",
      intro_title: "WhatsApp Web",
      intro_sub: "Envie e receba mensagens sem precisar manter seu celular conectado.",
      no_chats: "Nenhuma conversa",
      update: "Uma nova versão do WhatsApp está disponível.",
      later: "Mais tarde",
      reload: "Recarregar"
    }
  };

  // Markup variants (names and meanings: devtools/simulator/_variants.py). A variant changes markup only; the page
  // learns it from "hello", so a new one shows on the next load. Every knob lives here.
  var BASE = { sideId: "side", paneId: "pane-side", composeTab: "10", sendTab: "11",
    sendIcon: "wds-ic-send-filled", ticks: {}, unrecognized: false, composeMoved: false };
  var VARIANTS = {
    "default": {},
    compose_tab_11: { composeTab: "11", sendTab: "12" },
    send_icon_renamed: { sendIcon: "ic-paper-plane" },
    ticks_renamed: { ticks: { "msg-check": "msg-check-v2", "msg-dblcheck": "msg-dblcheck-ack" } },
    side_ids_renamed: { sideId: "side-v2", paneId: null },
    unrecognized_main: { unrecognized: true },  // no #side, #pane-side, grid, search box: only div[data-panel]
    // the composer left the footer and lost its role and aria-label: only section.composer-v4 [contenteditable]
    compose_moved: { composeMoved: true, composeTab: "11", sendTab: "12" }
  };

  var API = "/__sim__/api/";
  var LS_KEY = "WASimSession";
  var LOADING_MS = 350;
  var STARTING_MS = 350;
  var DBLCHECK_MS = 500;
  var CLIENT = "c" + Math.random().toString(36).slice(2) + Date.now().toString(36);

  var T = STRINGS.en;
  var V = BASE;
  var token = null;
  var screen = "startup";
  var modes = {};
  var pollMs = 1000;
  var pollTimer = null;
  var netDown = false;
  var chatsJson = "";
  var chats = [];
  var currentChat = null;
  var pending = {};   // message id -> {phone, text, inFlight}
  var sendAfterLogin = null;
  var incoming = [];    // chats with incoming messages: {jid, title, group, unread, last, ts} (_incoming.py)
  var incomingJson = "";
  var currentJid = null;  // the open chat's jid, once known
  var listEl = null;    // the chat list and the search box of the main screen, whatever the variant calls them
  var searchEl = null;

  // ----- helpers -------------------------------------------------------------------------------------------------
  function h(tag, attrs) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    });
    for (var i = 2; i < arguments.length; i++) {
      var kid = arguments[i];
      if (Array.isArray(kid)) kid.forEach(function (k2) { if (k2) el.append(k2); });
      else if (kid !== null && kid !== undefined && kid !== false) el.append(kid);
    }
    return el;
  }
  function $(sel) { return document.querySelector(sel); }
  function wrapper() { return $(".app-wrapper-web"); }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function hhmm(ts) {
    var d = new Date(ts * 1000);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }
  function api(name, body) {
    var payload = Object.assign({ client: CLIENT, token: token }, body || {});
    return fetch(API + name, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload)
    }).then(function (r) { return r.json(); });
  }
  function freezeIfAsked(r) {
    if (r && r.modes && r.modes.frozen) {
      while (true) { /* the "frozen" fault: a busy loop that never yields */ }
    }
  }

  // ----- login storage: localStorage token plus an IndexedDB record ---------------------------------------------
  function idb(mode, fn) {
    return new Promise(function (resolve) {
      var req;
      try { req = indexedDB.open("wawc", 1); } catch (e) { resolve(null); return; }
      req.onupgradeneeded = function () { req.result.createObjectStore("user"); };
      req.onerror = function () { resolve(null); };
      req.onsuccess = function () {
        var db = req.result;
        var tx = db.transaction("user", mode);
        var out = fn(tx.objectStore("user"));
        tx.oncomplete = function () { db.close(); resolve(out && out.result !== undefined ? out.result : null); };
        tx.onerror = function () { db.close(); resolve(null); };
      };
    });
  }
  function storeLogin(t) {
    token = t;
    localStorage.setItem(LS_KEY, t);
    localStorage.setItem("last-wid-md", JSON.stringify("linked-device@c.us"));
    return idb("readwrite", function (s) { return s.put({ token: t, ts: Date.now() }, "WASimSession"); });
  }
  function clearLogin() {
    token = null;
    localStorage.removeItem(LS_KEY);
    localStorage.removeItem("last-wid-md");
    return idb("readwrite", function (s) { return s.delete("WASimSession"); });
  }
  function readLogin() {
    var t = localStorage.getItem(LS_KEY);
    if (t) return Promise.resolve(t);
    return idb("readonly", function (s) { return s.get("WASimSession"); }).then(function (rec) {
      return rec && rec.token ? rec.token : null;
    });
  }

  // ----- QR screen ------------------------------------------------------------------------------------------------
  function hash(s) {
    var x = 2166136261;
    for (var i = 0; i < s.length; i++) { x ^= s.charCodeAt(i); x = Math.imul(x, 16777619) >>> 0; }
    return x || 1;
  }
  function drawQr(canvas, payload) {
    var n = 33, px = 8, ctx = canvas.getContext("2d"), seed = hash(payload);
    canvas.width = canvas.height = n * px + 2 * 16;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#122e31";
    function rnd() { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 4294967296; }
    function finder(cx, cy) {
      ctx.fillRect(16 + cx * px, 16 + cy * px, 7 * px, 7 * px);
      ctx.fillStyle = "#fff"; ctx.fillRect(16 + (cx + 1) * px, 16 + (cy + 1) * px, 5 * px, 5 * px);
      ctx.fillStyle = "#122e31"; ctx.fillRect(16 + (cx + 2) * px, 16 + (cy + 2) * px, 3 * px, 3 * px);
    }
    for (var y = 0; y < n; y++) {
      for (var x = 0; x < n; x++) {
        var inFinder = (x < 8 && y < 8) || (x > n - 9 && y < 8) || (x < 8 && y > n - 9);
        if (!inFinder && rnd() < 0.5) ctx.fillRect(16 + x * px, 16 + y * px, px, px);
      }
    }
    finder(0, 0); finder(n - 7, 0); finder(0, n - 7);
  }
  function landing(inner) {
    var steps = T.qr_steps.map(function (s) { return h("li", { text: s }); });
    wrapper().replaceChildren(h("div", { class: "landing" },
      h("div", { class: "landing-header" }, h("span", { "data-icon": "wa-wordmark-refreshed", class: "wordmark",
        text: "WhatsApp" })),
      h("div", { class: "landing-window" },
        h("div", { class: "landing-main" }, h("div", { class: "landing-title", text: T.qr_title }),
          h("ol", { class: "steps" }, steps)),
        h("div", { class: "qr-slot" }, inner)),
      screen === "qr" || screen === "idle" ? linkButton() : null));
  }
  function showQr(payload) {
    var box = $("div[data-ref]");
    if (screen === "qr" && box) {
      if (box.getAttribute("data-ref") !== payload) {
        box.setAttribute("data-ref", payload);
        drawQr(box.querySelector("canvas"), payload);
      }
      return;
    }
    screen = "qr";
    var canvas = h("canvas", { "aria-label": T.qr_aria, role: "img" });
    drawQr(canvas, payload);
    landing(h("div", { "data-ref": payload, class: "qr-code" }, canvas));
  }
  function showIdle() {
    if (screen === "idle") return;
    screen = "idle";
    landing(h("div", { class: "qr-idle" }, h("button", { class: "qr-reload", onclick: reloadQr },
      h("span", { "data-icon": "refresh-large", class: "icon-refresh" }), h("div", { text: T.qr_reload }))));
  }
  function reloadQr() {
    api("qr_reload").then(handle, function () { schedulePoll(pollMs); });
  }

  // ----- linking by phone number (devtools/simulator/_linking.py) -----------------------------------------------
  var LINK = { link: "Log in with phone number", phone_aria: "Type your phone number.", next: "Next",
    code_title: "Enter code on phone", back: "Log in with QR code",
    code_help: "On your phone, open WhatsApp > Linked devices > Link a device > Link with phone number instead, " +
      "and enter this code." };
  function linkButton() {
    return h("div", { class: "link-phone", role: "button", tabindex: "0", onclick: startLink },
      h("span", { text: LINK.link }));
  }
  function startLink() { api("link_start").then(handle, function () { schedulePoll(pollMs); }); }
  function showPhoneEntry(error) {
    var input = $("input.link-phone-input");
    if (screen !== "phone_entry" || !input) {
      screen = "phone_entry";
      input = h("input", { type: "text", inputmode: "numeric", class: "link-phone-input", "aria-label": LINK.phone_aria,
        autocomplete: "off" });
      var next = h("div", { role: "button", tabindex: "0", class: "btn primary link-next", onclick: function () {
        api("link_phone", { phone: input.value.replace(/[^0-9]/g, "") }).then(handle, function () {
          schedulePoll(pollMs); });
      } }, h("div", { text: LINK.next }));
      landing(h("div", { class: "link-entry" }, input, h("div", { class: "link-error" }), next));
    }
    var slot = $("div.link-error");
    if (error) slot.replaceChildren(h("div", { role: "alert", text: error }));
  }
  function showCode(code) {
    var box = $("div[data-link-code]");
    var chars = function () { return code.split("").map(function (c) { return h("span", { text: c }); }); };
    if (screen === "code" && box) {
      if (box.getAttribute("data-link-code") !== code) {
        box.setAttribute("data-link-code", code);
        box.replaceChildren.apply(box, chars());
      }
      return;
    }
    screen = "code";
    landing(h("div", { class: "link-code" }, h("div", { class: "landing-title", text: LINK.code_title }),
      h("div", { "aria-details": "link-device-phone-number-code-screen-instructions", "data-link-code": code,
        class: "link-code-chars" }, chars()),
      h("div", { id: "link-device-phone-number-code-screen-instructions", text: LINK.code_help })));
  }

  // ----- loading --------------------------------------------------------------------------------------------------
  function showLoading() {
    screen = "loading";
    var bar = h("progress", { value: 0, max: 100, dir: "ltr" });
    wrapper().replaceChildren(h("div", { class: "loading-screen" },
      h("div", { class: "loading-logo", "data-icon": "intro-md-beta-logo-light" }),
      h("div", { class: "loading-progress" }, bar),
      h("div", { class: "loading-title", text: T.loading }),
      h("div", { class: "loading-e2e" }, h("span", { "data-icon": "lock-small" }), h("span", { text: T.e2e }))));
    var start = Date.now();
    var timer = setInterval(function () {
      var v = Math.min(100, Math.round((Date.now() - start) * 100 / LOADING_MS));
      bar.value = v;
      if (v >= 100) {
        if (modes.loading_stuck) { clearInterval(timer); return; }  // stuck at 100 % until a reload
        clearInterval(timer);
        if (screen === "loading") showMain();
      }
    }, 50);
  }

  // ----- main screen ----------------------------------------------------------------------------------------------
  function emptyP() { return h("p", { class: "selectable-text copyable-text" }, h("br")); }
  function textP(line) {
    return h("p", { class: "selectable-text copyable-text", dir: "auto" },
      line ? h("span", { "data-lexical-text": "true", text: line }) : h("br"));
  }
  function showMain() {
    screen = "main";
    var slots = [h("div", { class: "main-slot" }, intro()), h("div", { class: "overlay-slot" }),
      h("div", { class: "modal-slot" })];
    wrapper().replaceChildren(V.unrecognized ? shellV3(slots) : h("div", { class: "two" }, sidePanel(), slots));
    renderChats(); renderBanners(); renderOverlays();
    if (sendAfterLogin) { var s = sendAfterLogin; sendAfterLogin = null; startChat(s.phone, s.text); }
  }
  function sidePanel() {
    searchEl = h("div", { contenteditable: "true", role: "textbox", "data-tab": "3", "aria-label": T.search,
      "data-lexical-editor": "true", class: "lexical-box search-box", title: T.search_ph, oninput: renderChats },
    emptyP());
    listEl = h("div", { "aria-label": T.chat_list, role: "grid", class: "chat-list" });
    return h("div", { id: V.sideId, class: "side-panel" },
      h("header", { class: "side-header" }, h("h1", { text: T.chats })),
      h("div", { class: "side-search" }, searchEl),
      h("div", { class: "banners" }),
      h("div", { id: V.paneId, class: "pane" }, listEl));
  }
  function shellV3(slots) {  // the unrecognized_main variant: a redesign whose one stable marker is data-panel
    searchEl = h("input", { type: "search", class: "search-v3", placeholder: T.search_ph, oninput: renderChats });
    listEl = h("div", { class: "rows-v3" });
    return h("div", { class: "app-shell-v3" },
      h("div", { "data-panel": "chats", class: "side-panel" },
        h("nav", { class: "side-header" }, h("h2", { text: T.chats })),
        h("div", { class: "side-search" }, searchEl),
        h("div", { class: "banners" }),
        h("div", { class: "pane" }, listEl)),
      slots);
  }
  function intro() {
    return h("div", { class: "intro", "data-asset-intro-image-light": "true" },
      h("h1", { text: T.intro_title }), h("div", { text: T.intro_sub }));
  }
  function renderChats() {
    var list = listEl;
    if (!list || !list.isConnected) return;
    var q = searchEl ? (searchEl.tagName === "INPUT" ? searchEl.value : searchEl.textContent).trim() : "";
    var rows = listEntries().filter(function (c) {
      return !q || c.title.indexOf(q) >= 0 || c.last.indexOf(q) >= 0;
    }).slice(0, !q && modes.virtual_list ? modes.virtual_list.rows : undefined).map(function (c) {  // virtualised
      return h("div", { role: V.unrecognized ? null : "row", class: "chat-row", tabindex: "-1",
        onclick: c.open },
      h("span", { title: c.title, dir: "auto", class: "chat-title", text: c.title }),
      h("span", { class: "chat-time", text: hhmm(c.ts) }),
      h("span", { title: c.last, dir: "ltr", class: "chat-last", text: c.last }),
      c.unread ? h("span", { class: "unread-badge", "aria-label": c.unread + " unread message" +
        (c.unread === 1 ? "" : "s"), text: String(c.unread) }) : null);
    });
    if (!rows.length) rows = [h("div", { class: "no-chats", text: T.no_chats })];
    list.replaceChildren.apply(list, rows);
  }
  function listEntries() {  // outgoing chats and chats with incoming messages, one row per chat, newest first
    var byJid = {};
    var out = chats.map(function (c) {  // a group (c.group) is kept under its jid and shown by its title
      var e = { title: c.group ? c.title : "+" + c.phone, last: c.last, ts: c.ts, unread: 0,
        open: function () { openFromList(c.phone, c.group ? c.title : null); } };
      byJid[c.group ? c.phone : c.phone + "@c.us"] = e;
      return e;
    });
    incoming.forEach(function (r) {
      var e = byJid[r.jid];
      var phone = r.group ? null : r.jid.split("@")[0];
      if (!e) {
        e = { title: r.title, last: r.last, ts: r.ts, unread: 0, open: phone
          ? function () { openFromList(phone); } : function () { openIncoming(r); } };
        out.push(e);
      } else if (r.ts > e.ts) { e.last = r.last; e.ts = r.ts; }
      e.unread = r.unread;
    });
    return out.sort(function (a, b) { return b.ts - a.ts; });
  }
  function renderBanners() {
    var slot = $("div.banners");
    if (!slot) return;
    var items = [];
    if (modes.offline || netDown) items.push(["alert-computer", T.offline, T.offline_sub]);
    if (modes.phone_offline) items.push(["alert-phone", T.phone_offline, T.phone_offline_sub]);
    slot.replaceChildren.apply(slot, items.map(function (b) {
      return h("div", { class: "banner", role: "button" }, h("span", { "data-icon": b[0] }),
        h("div", {}, h("div", { class: "banner-title", text: b[1] }), h("div", { text: b[2] })));
    }));
  }
  function popup(text, buttons) {
    return h("div", { class: "backdrop" }, h("div", { "data-animate-modal-popup": "true", role: "dialog",
      class: "popup" }, h("div", { class: "popup-body", text: text }),
    buttons.length ? h("div", { class: "popup-buttons" }, buttons) : null));
  }
  function button(label, onclick, primary) {
    return h("button", { class: primary ? "btn primary" : "btn", onclick: onclick }, h("div", { text: label }));
  }
  function renderOverlays() {
    var slot = $("div.overlay-slot");
    if (!slot) return;
    var want = modes.conflict ? "conflict" : modes.another_tab ? "another_tab" :
      modes.update_popup ? "update_popup" : "";
    if ((slot.getAttribute("data-showing") || "") === want) return;
    slot.setAttribute("data-showing", want);
    if (!want) { slot.replaceChildren(); return; }
    if (want === "update_popup") {  // a popup the bot does not know: either button just closes it
      var close = function () {
        api("use_here", { mode: want }).then(function () { delete modes[want]; renderOverlays(); });
      };
      slot.replaceChildren(popup(T.update, [button(T.later, close), button(T.reload, close, true)]));
      return;
    }
    var useHere = button(T.use_here, function () {
      api("use_here", { mode: want }).then(function () { delete modes[want]; renderOverlays(); });
    }, true);
    var other = want === "conflict" ? button(T.log_out, function () {
      api("logout").then(loggedOut, loggedOut);
    }) : button(T.close, function () { screen = "closed"; wrapper().replaceChildren(
      h("div", { class: "landing closed" }, h("div", { class: "landing-title", text: T.another_tab }))); });
    slot.replaceChildren(popup(T[want], [other, useHere]));
  }

  // ----- chats and sending ----------------------------------------------------------------------------------------
  function modal(node) { var slot = $("div.modal-slot"); if (slot) slot.replaceChildren(node || ""); }
  function startChat(phone, text) {
    modal(popup(T.starting, []));
    var shown = Date.now();
    api("chat", { phone: phone }).then(function (r) {
      return sleep(Math.max(0, STARTING_MS - (Date.now() - shown))).then(function () { return r; });
    }).then(function (r) {
      history.replaceState(null, "", "/");
      if (r.status === "logged_out") { loggedOut(); return; }
      if (!r.valid) { modal(popup(T.invalid, [button(T.ok, function () { modal(null); }, true)])); return; }
      modal(null);
      openChat(phone, text, r.messages, r.incoming);
    }, function () { modal(null); });
  }
  function openFromList(phone, title) {  // title: a group's (phone is then its jid)
    api("chat", { phone: phone }).then(function (r) {
      if (r.valid) openChat(phone, "", r.messages, r.incoming, title || null, title ? phone : null);
    });
  }
  function openIncoming(row) {  // a group (or a chat with no outgoing history): opening it sends read receipts
    api("open_incoming", { jid: row.jid }).then(function (r) {
      if (r.status === "logged_out") { loggedOut(); return; }
      openChat(row.group ? row.jid : null, "", [], r.incoming, row.title, row.jid);  // a group can be sent to
    });
  }
  function tickIcon(icon) { return V.ticks[icon] || icon; }
  function bubble(m) {  // data-id sits on the row's wrapper, an ancestor of div.message-out, as on the real page
    var icon = { pending: ["msg-time", T.pending], sent: ["msg-dblcheck", T.delivered],
      failed: ["msg-failed", T.failed] }[m.status];
    var d = new Date(m.ts * 1000);
    var pre = "[" + hhmm(m.ts) + ", " + (d.getMonth() + 1) + "/" + d.getDate() + "/" + d.getFullYear() + "] " +
      T.you + ": ";
    return h("div", { role: "row" }, h("div", { tabindex: "-1", "data-id": "true_" + (currentJid || currentChat + "@c.us") + "_" + m.id },
      h("div", { class: "message-out focusable-list-item" },
        h("div", { class: "copyable-text", "data-pre-plain-text": pre },
          h("span", { dir: "ltr", class: "selectable-text copyable-text" }, h("span", { text: m.text }))),
        h("div", { class: "msg-meta" }, h("span", { class: "msg-clock", text: hhmm(m.ts) }),
          h("span", { "data-icon": tickIcon(icon[0]), "aria-label": icon[1], class: "tick" })))));
  }
  function bubbleIn(m) {  // an incoming bubble: data-id "false_<jid>_<ID>[_<sender jid>]" on the row's wrapper
    var d = new Date(m.ts * 1000);
    var pre = "[" + hhmm(m.ts) + ", " + (d.getMonth() + 1) + "/" + d.getDate() + "/" + d.getFullYear() + "] " +
      m.sender + ": ";
    return h("div", { role: "row" }, h("div", { tabindex: "-1", "data-id": m.data_id },
      h("div", { class: "message-in focusable-list-item" },
        h("div", { class: "copyable-text", "data-pre-plain-text": pre },
          h("span", { dir: "ltr", class: "selectable-text copyable-text" }, h("span", { text: m.text }))),
        h("div", { class: "msg-meta" }, h("span", { class: "msg-clock", text: hhmm(m.ts) })))));
  }
  function refreshOpenChat() {  // new incoming messages in the open chat: shown and read at once
    var row = incoming.filter(function (r) { return r.jid === currentJid; })[0];
    var panel = $("#main .conversation-panel");
    if (!row || !row.unread || !panel) return;
    api("open_incoming", { jid: row.jid }).then(function (r) {
      var now = $("#main .conversation-panel");
      if (now !== panel) return;
      (r.incoming || []).forEach(function (m) {
        if (!panel.querySelector("div[data-id='" + m.data_id + "']")) panel.append(bubbleIn(m));
      });
      panel.scrollTop = panel.scrollHeight;
    });
  }
  function closeChat() {  // Escape: the open chat closes, as on the real page
    var slot = $("div.main-slot");
    if (!slot || !$("#main")) return;
    currentChat = null; currentJid = null;
    slot.replaceChildren(intro());
  }
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") closeChat(); });
  function setTick(id, icon) {
    var el = document.querySelector("div[data-id$='_" + id + "'] span.tick");
    if (!el) return;
    el.setAttribute("data-icon", tickIcon(icon));
    el.setAttribute("aria-label", { "msg-time": T.pending, "msg-check": T.sent, "msg-dblcheck": T.delivered,
      "msg-failed": T.failed }[icon]);
  }
  function nodeText(n) {
    if (n.nodeType === Node.TEXT_NODE) return n.data;
    if (n.nodeName === "BR") return "\n";
    var out = "";
    n.childNodes.forEach(function (c) { out += nodeText(c); });
    return out;
  }
  function composeText(box) {  // one line per paragraph; <br> (Shift+Enter) is a line break too
    var lines = [];
    box.childNodes.forEach(function (n) { lines.push(nodeText(n).replace(/\n$/, "").replace(/\u00a0/g, " ")); });
    return lines.join("\n").trim();
  }
  function composeBox() { return $("#main div.compose-box"); }
  function updateSendButton() {
    var box = composeBox();
    var slot = $("#main .send-slot");
    if (!box || !slot) return;
    var hasText = composeText(box) !== "";
    box.classList.toggle("empty", !hasText);
    var want = hasText ? "send" : "mic";
    if (slot.getAttribute("data-state") === want) return;
    slot.setAttribute("data-state", want);
    slot.replaceChildren(hasText
      ? h("button", { "aria-label": T.send, "data-tab": V.sendTab, class: "send-btn", onclick: sendFromBox },
        h("span", { "data-icon": V.sendIcon, "aria-hidden": "true" }))
      : h("button", { "aria-label": T.voice, "data-tab": V.sendTab, class: "mic-btn" },
        h("span", { "data-icon": "mic-outlined", "aria-hidden": "true" })));
  }
  function openChat(phone, text, messages, inMessages, title, jid) {
    currentChat = phone;
    currentJid = jid || (phone ? phone + "@c.us" : null);
    var lines = text ? text.split("\n") : [];
    var box = h("div", { contenteditable: "true", role: V.composeMoved ? null : "textbox", "data-tab": V.composeTab,
      "aria-label": V.composeMoved ? null : T.compose,
      "aria-placeholder": T.compose, "data-lexical-editor": "true", spellcheck: "true", tabindex: V.composeTab,
      class: "lexical-box compose-box", onkeydown: function (e) {
        if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); sendFromBox(); }
      }, oninput: function () {
        if (!box.querySelector("p")) {
          var p = emptyP();
          box.replaceChildren(p);
          window.getSelection().collapse(p, 0);
        }
        updateSendButton();
      } }, lines.length ? lines.map(textP) : emptyP());
    var all = (messages || []).map(function (m) { return { ts: m.ts, el: bubble(m) }; })
      .concat((inMessages || []).map(function (m) { return { ts: m.ts, el: bubbleIn(m) }; }))
      .sort(function (a, b) { return a.ts - b.ts; });
    var panel = h("div", { class: "conversation-panel", role: "application" },
      all.map(function (x) { return x.el; }));
    var main = h("div", { id: "main" },
      h("header", { class: "chat-header" }, h("span", { title: title || "+" + phone, dir: "auto",
        text: title || "+" + phone })),
      panel,
      h(V.composeMoved ? "section" : "footer", { class: V.composeMoved ? "composer-v4" : null },
        h("div", { class: "compose" }, h("div", { class: "compose-wrap" },
          h("div", { class: "placeholder", text: T.compose }), box), h("div", { class: "send-slot" }))));
    $("div.main-slot").replaceChildren(main);
    (messages || []).forEach(function (m) {
      if (m.status === "pending") pending[m.id] = { phone: phone, text: m.text, inFlight: false };
    });
    updateSendButton();
    panel.scrollTop = panel.scrollHeight;
    box.focus();
    var sel = window.getSelection(); sel.selectAllChildren(box); sel.collapseToEnd();
  }
  function newId() {
    var hex = "";
    var bytes = crypto.getRandomValues(new Uint8Array(8));
    bytes.forEach(function (b) { hex += b.toString(16).padStart(2, "0"); });
    return "3EB0" + hex.toUpperCase();
  }
  function sendFromBox() {
    var box = composeBox();
    if (!box) return;
    var text = composeText(box);
    if (!text) return;
    var id = newId();
    $("#main .conversation-panel").append(bubble({ id: id, text: text, ts: Date.now() / 1000, status: "pending" }));
    box.replaceChildren(emptyP());
    updateSendButton();
    pending[id] = { phone: currentChat, text: text, inFlight: false };
    trySend(id);
  }
  function trySend(id) {
    var p = pending[id];
    if (!p || p.inFlight) return;
    p.inFlight = true;
    api("send", { phone: p.phone, text: p.text, id: id }).then(function (r) {
      p.inFlight = false;
      if (r.status === "sent") {
        delete pending[id]; setTick(id, "msg-check");
        setTimeout(function () { setTick(id, "msg-dblcheck"); }, DBLCHECK_MS);
      } else if (r.status === "failed" || r.status === "invalid") {
        delete pending[id]; setTick(id, "msg-failed");
      } else if (r.status === "logged_out") {
        loggedOut();
      }
    }, function () { p.inFlight = false; });
  }

  // ----- the poll loop --------------------------------------------------------------------------------------------
  function schedulePoll(ms) { clearTimeout(pollTimer); pollTimer = setTimeout(poll, ms); }
  function poll() {
    api("poll").then(function (r) {
      if (netDown) { netDown = false; renderBanners(); }
      handle(r);
    }, function () {
      if (!netDown) { netDown = true; renderBanners(); }
      schedulePoll(pollMs);
    });
  }
  function loggedOut() {
    clearTimeout(pollTimer);
    screen = "logged_out";
    clearLogin().then(function () { location.replace("/?post_logout=1"); });
  }
  function handle(r) {
    freezeIfAsked(r);
    modes = r.modes || {};
    pollMs = Math.round((r.poll_s || 1) * 1000);
    var next = pollMs;
    if (r.status === "logged_out") { loggedOut(); return; }
    if (r.status === "qr") {
      if (token) clearLogin();
      showQr(r.qr);
      next = Math.max(50, Math.min(pollMs, Math.round(r.qr_expires_in_s * 1000) + 30));
    } else if (r.status === "idle") {
      showIdle();
    } else if (r.status === "phone_entry") {
      showPhoneEntry(r.error);
    } else if (r.status === "code") {
      showCode(r.code);
      next = Math.max(50, Math.min(pollMs, Math.round(r.code_expires_in_s * 1000) + 30));
    } else if (r.status === "syncing") {
      storeLogin(r.token);
      showLoading();
    } else if (r.status === "ready") {
      if (screen === "startup") showLoading();
      var json = JSON.stringify(r.chats || []);
      if (json !== chatsJson) { chatsJson = json; chats = r.chats || []; renderChats(); }
      var inJson = JSON.stringify(r.incoming || []);
      if (inJson !== incomingJson) { incomingJson = inJson; incoming = r.incoming || []; renderChats(); }
      if (screen === "main") refreshOpenChat();
      if (screen === "main") { renderBanners(); renderOverlays(); }
      (r.pending || []).forEach(function (m) {  // the account's queue: sent again until the server takes it
        if (!pending[m.id]) pending[m.id] = { phone: m.phone, text: m.text, inFlight: false };
      });
      Object.keys(pending).forEach(trySend);
    }
    schedulePoll(next);
  }

  function boot() {
    if (location.pathname === "/send") {
      var q = new URLSearchParams(location.search);
      sendAfterLogin = { phone: (q.get("phone") || "").replace(/^\+/, ""), text: q.get("text") || "" };
    }
    readLogin().then(function (t) {
      token = t;
      return api("hello");
    }).then(function (r) {
      T = STRINGS[r.locale] || STRINGS.en;
      V = Object.assign({}, BASE, VARIANTS[r.variant] || {});
      window.Debug = { VERSION: r.web_version };  // as the real page exposes its build
      document.documentElement.lang = r.locale || "en";
      handle(r);
    }, function () { setTimeout(boot, 1000); });
  }
  boot();
})();
