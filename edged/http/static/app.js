// edged operator page. Everything goes through the admin API (/api/v1/...), so a
// script can do the same. The API key (when the station has one) is asked for once,
// kept in this tab's sessionStorage and sent as the X-API-Key header, never in a URL.
"use strict";

const KEY_STORE = "edged.apiKey";
const FRAME_REFRESH_MS = 1000;
const STATUS_REFRESH_MS = 1000;
const SLOW_REFRESH_MS = 3000;

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// ------------------------------------------------------------------ API access

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function apiKey() { return sessionStorage.getItem(KEY_STORE) || ""; }

function showKeyState() {
  const b = $("#key-button");
  b.textContent = apiKey() ? "API key: set" : "API key: none";
  b.classList.toggle("set", Boolean(apiKey()));
}

let keyDialogOpen = false;
function askKey(reason) {
  if (keyDialogOpen) return;
  keyDialogOpen = true;
  const d = $("#key-dialog");
  $("#key-reason").textContent = reason || "";
  $("#key-input").value = "";
  d.showModal();
}

async function api(path, { method = "GET", json, body, headers = {}, as = "json" } = {}) {
  const h = { ...headers };
  const key = apiKey();
  if (key) h["X-API-Key"] = key;
  if (json !== undefined) { h["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  const resp = await fetch(path, { method, headers: h, body, cache: "no-store" });
  if (!resp.ok) {
    let message = resp.statusText;
    try { message = (await resp.json()).error || message; } catch (_) { /* not JSON */ }
    if (resp.status === 401 && key === apiKey()) { // (not an answer to a key since replaced)
      askKey(key ? "The API key was refused." : "This station wants its API key.");
    }
    throw new ApiError(resp.status, message);
  }
  if (as === "blob") return resp.blob();
  if (as === "text") return resp.text();
  return resp.json();
}

function notice(text, ok = false) {
  const n = $("#notice");
  n.textContent = text;
  n.classList.toggle("ok", ok);
  n.hidden = !text;
  clearTimeout(notice.timer);
  if (text) notice.timer = setTimeout(() => { n.hidden = true; }, ok ? 4000 : 10000);
}

function confirmAction(text) {
  const d = $("#confirm-dialog");
  $("#confirm-text").textContent = text;
  d.returnValue = "";
  d.showModal();
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
  });
}

// A change to the station (teach, roll back, delete, upload, switch recipe): confirmed
// first; refused by the station without the right key (401), which the page says.
async function act(what, text, run) {
  if (!(await confirmAction(text))) return false;
  try {
    const out = await run();
    notice(`${what}: done`, true);
    return out ?? true;
  } catch (err) {
    if (err.status === 401) notice(`${what}: refused — this needs the API key (${err.message})`);
    else notice(`${what}: ${err.message}`);
    return false;
  }
}

// Images come through fetch (so the key travels in a header), shown as blob URLs.
async function setImage(img, path) {
  if (img.dataset.loading === "1") return;
  img.dataset.loading = "1";
  try {
    const blob = await api(path, { as: "blob" });
    const url = URL.createObjectURL(blob);
    const old = img.dataset.url;
    img.src = url;
    img.dataset.url = url;
    img.dataset.path = path;
    if (old) URL.revokeObjectURL(old);
  } catch (err) {
    img.alt = err.message;
  } finally {
    img.dataset.loading = "0";
  }
}

// Indents JSON text without parsing its numbers (a 64-bit device timestamp stays exact).
function prettyJson(text) {
  let out = "", depth = 0, inString = false, escaped = false;
  const newline = () => "\n" + "  ".repeat(depth);
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (inString) {
      out += ch;
      if (escaped) escaped = false;
      else if (ch === "\\") escaped = true;
      else if (ch === '"') inString = false;
    } else if (ch === '"') {
      inString = true;
      out += ch;
    } else if ((ch === "{" || ch === "[") && text[i + 1] === (ch === "{" ? "}" : "]")) {
      out += ch + text[i + 1];
      i += 1;
    } else if (ch === "{" || ch === "[") {
      depth += 1;
      out += ch + newline();
    } else if (ch === "}" || ch === "]") {
      depth -= 1;
      out += newline() + ch;
    } else if (ch === ",") {
      out += "," + newline();
    } else if (ch === ":") {
      out += ": ";
    } else if (!/\s/.test(ch)) {
      out += ch;
    }
  }
  return out;
}

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${s.toFixed(0)} s ago`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

function fmtBytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} KiB`;
  return `${n} B`;
}

// ------------------------------------------------------------------ line overview

const tiles = new Map();
let cameras = [];

function cameraState(cam) {
  if (!cam.running) return ["stopped", "not running (disabled or not started)"];
  const st = cam.state || {};
  if (st.connected) return ["running", ""];
  if (st.reconnects > 0 || st.last_error) return ["reconnecting", st.last_error || "reconnecting"];
  return ["stopped", st.last_error || "not connected yet"];
}

function buildTile(cam) {
  const t = {
    root: el("div", { class: "tile", "data-camera": cam.id }),
    name: el("span", { class: "name", text: cam.id }),
    recipe: el("span", { class: "recipe" }),
    state: el("span", { class: "state badge" }),
    img: el("img", { alt: `live image of ${cam.id}`, class: "frame" }),
    failImg: el("img", { alt: `last failed part of ${cam.id}`, class: "last-fail" }),
    failText: el("div", { class: "fail-caption", text: "no failed part yet" }),
    failId: null,
    verdict: el("span", { class: "verdict badge" }),
    age: el("span", { class: "age" }),
    why: el("div", { class: "why" }),
    rows: {},
  };
  const table = el("table", { class: "figures" },
    el("thead", {}, el("tr", {}, el("th", { text: "" }), el("th", { text: "pass" }),
      el("th", { text: "fail" }), el("th", { text: "error" }), el("th", { text: "/min" }),
      el("th", { text: "fail %" }))));
  const tbody = el("tbody");
  for (const [key, label] of [["last_minute", "last minute"], ["last_hour", "last hour"], ["total", "since start"]]) {
    const cells = ["pass", "fail", "error", "per_min", "fail_per"].map((c) => el("td", { class: c }));
    t.rows[key] = cells;
    tbody.append(el("tr", { "data-window": key }, el("td", { text: label }), cells));
  }
  table.append(tbody);
  t.fps = el("td");
  tbody.append(el("tr", {}, el("td", { text: "fps" }), t.fps));
  const failPane = el("div", { class: "fail-pane", title: "last failed part: click for details" },
    t.failImg, t.failText);
  failPane.addEventListener("click", () => { if (t.failId) openPart(cam.id, t.failId); });
  t.root.append(
    el("div", { class: "tile-head" }, t.name, t.recipe, t.state),
    el("div", { class: "panes" }, el("div", { class: "live" }, t.img, t.verdict, t.age), failPane),
    t.why, table);
  return t;
}

function updateTile(t, cam) {
  const [state, why] = cameraState(cam);
  t.recipe.textContent = cam.recipe ? `recipe ${cam.recipe}` : "";
  t.state.textContent = state;
  t.state.className = `state badge ${state}`;
  t.why.textContent = why;
  t.why.hidden = !why;
  t.fps.textContent = cam.state ? cam.state.fps.toFixed(1) : "–";
  const last = cam.last_result;
  t.verdict.hidden = !last;
  if (last) {
    t.verdict.textContent = `${last.verdict} #${last.seq}`;
    t.verdict.className = `verdict badge ${last.verdict}`;
    t.age.textContent = ago(last.ts);
  }
  t.root.classList.toggle("fail", Boolean(last && last.verdict !== "pass"));
  const v = cam.verdicts || {};
  for (const [key, cells] of Object.entries(t.rows)) {
    const w = v[key] || {};
    const vals = [w.pass, w.fail, w.error, w.per_min, w.fail_per];
    cells.forEach((cell, i) => {
      const x = vals[i];
      cell.textContent = x === undefined || x === null ? "–" : String(x);
    });
  }
}

async function refreshCameras() {
  const doc = await api("/api/v1/cameras");
  cameras = doc.cameras;
  const box = $("#tiles");
  $("#no-cameras").hidden = cameras.length > 0;
  // A 1280x800 panel shows up to 4 tiles without scrolling: 1, 2, 3 or 2x2 columns.
  const n = cameras.length;
  box.style.gridTemplateColumns = `repeat(${n <= 1 ? 1 : n === 2 || n === 4 ? 2 : 3}, minmax(0, 1fr))`;
  box.classList.toggle("many", n > 2);
  for (const cam of cameras) {
    let t = tiles.get(cam.id);
    if (!t) { t = buildTile(cam); tiles.set(cam.id, t); box.append(t.root); }
    updateTile(t, cam);
  }
  fillCameraSelect();
  await refreshLastFailures();
}

let lastFailCheck = 0;

// The newest kept failed part of each camera, boxed, beside its live image.
async function refreshLastFailures() {
  if (Date.now() - lastFailCheck < SLOW_REFRESH_MS) return;
  lastFailCheck = Date.now();
  const doc = await api("/api/v1/failures?n=100");
  for (const cam of cameras) {
    const t = tiles.get(cam.id);
    const part = doc.failures.find((p) => p.camera === cam.id);
    if (!t || !part) continue;
    t.failText.textContent = `last failure #${part.seq} · ${ago(part.ts)} · ${part.reasons[0] || ""}`;
    if (part.id === t.failId) continue;
    t.failId = part.id;
    setImage(t.failImg, `/api/v1/failures/${encodeURIComponent(cam.id)}/${part.id}/image.jpg`);
  }
}

function refreshFrames() {
  for (const cam of cameras) {
    const t = tiles.get(cam.id);
    if (t && cam.running) setImage(t.img, `/api/v1/cameras/${encodeURIComponent(cam.id)}/frame.jpg?quality=70`);
  }
}

// ------------------------------------------------------------------ last failures

function fillCameraSelect() {
  const sel = $("#failure-camera");
  const have = new Set([...sel.options].map((o) => o.value));
  for (const cam of cameras) if (!have.has(cam.id)) sel.append(el("option", { value: cam.id, text: cam.id }));
}

const partCards = new Map();

async function refreshFailures() {
  const camera = $("#failure-camera").value;
  const q = camera ? `?camera=${encodeURIComponent(camera)}&n=60` : "?n=60";
  const doc = await api(`/api/v1/failures${q}`);
  $("#failure-summary").textContent =
    `${doc.failures.length} shown · kept on disk: ${fmtBytes(doc.bytes)} of ${fmtBytes(doc.max_bytes)}, ` +
    `at most ${doc.keep_per_camera} per camera`;
  $("#no-failures").hidden = doc.failures.length > 0;
  const box = $("#failures");
  const wanted = new Set(doc.failures.map((p) => p.id));
  for (const [id, card] of partCards) if (!wanted.has(id)) { card.remove(); partCards.delete(id); }
  let prev = null;
  for (const part of doc.failures) {
    let card = partCards.get(part.id);
    if (!card) {
      const img = el("img", { alt: `failed part ${part.camera} #${part.seq}` });
      card = el("div", { class: "part-card", "data-id": part.id, onclick: () => openPart(part.camera, part.id) },
        img,
        el("div", { class: "meta" },
          el("strong", { text: `${part.camera} #${part.seq}` }), " · ", el("span", { text: part.recipe }),
          el("div", { class: "muted", text: `${part.ts.replace("T", " ").slice(0, 19)} · ${part.regions} defect(s)` }),
          el("ul", { class: "reasons" }, part.reasons.slice(0, 3).map((r) => el("li", { text: r })))));
      partCards.set(part.id, card);
      setImage(img, `/api/v1/failures/${encodeURIComponent(part.camera)}/${part.id}/image.jpg`);
    }
    if (prev === null) box.prepend(card); else prev.after(card);
    prev = card;
  }
}

async function openPart(camera, id) {
  const base = `/api/v1/failures/${encodeURIComponent(camera)}/${encodeURIComponent(id)}`;
  try {
    const text = await api(base, { as: "text" });
    const result = JSON.parse(text);
    $("#part-title").textContent =
      `${result.camera} #${result.seq} · ${result.recipe} · ${result.verdict} · ${result.ts}`;
    const reasons = $("#part-reasons");
    reasons.replaceChildren(...(result.reasons || []).map((r) => el("li", { text: r })));
    const rows = (result.regions || []).map((r) => el("tr", {},
      [r.label, r.check, r.x, r.y, r.width, r.height, r.score ?? ""].map((v) => el("td", { text: v }))));
    $("#part-regions tbody").replaceChildren(...rows);
    $("#part-json").textContent = prettyJson(text);
    const img = $("#part-image");
    img.removeAttribute("src");
    $("#part-dialog").showModal();
    await setImage(img, `${base}/image.jpg`);
  } catch (err) {
    notice(`failed part: ${err.message}`);
  }
}

// ------------------------------------------------------------------ references

async function refreshReferences() {
  const [refs, cams, recipes] = await Promise.all([
    api("/api/v1/references").catch((err) => ({ references: [], error: err.message })),
    api("/api/v1/cameras"),
    api("/api/v1/recipes"),
  ]);
  const pairs = new Map();
  for (const e of refs.references) pairs.set(`${e.recipe}/${e.camera}`, e);
  for (const cam of cams.cameras) {
    if (cam.recipe && !pairs.has(`${cam.recipe}/${cam.id}`)) {
      pairs.set(`${cam.recipe}/${cam.id}`, { recipe: cam.recipe, camera: cam.id, active: null, versions: [] });
    }
  }
  const httpRecipe = recipes.http_default;
  if (httpRecipe && !pairs.has(`${httpRecipe}/http`)) {
    pairs.set(`${httpRecipe}/http`, { recipe: httpRecipe, camera: "http", active: null, versions: [] });
  }
  const live = new Set(cams.cameras.filter((c) => c.running).map((c) => c.id));
  const box = $("#references");
  box.replaceChildren();
  if (refs.error) box.append(el("p", { class: "empty", text: `references: ${refs.error}` }));
  for (const entry of [...pairs.values()].sort((a, b) => `${a.recipe}/${a.camera}`.localeCompare(`${b.recipe}/${b.camera}`))) {
    box.append(referenceCard(entry, live.has(entry.camera)));
  }
}

function referenceCard(entry, live) {
  const { recipe, camera } = entry;
  const base = `/api/v1/references/${encodeURIComponent(recipe)}/${encodeURIComponent(camera)}`;
  const frames = el("input", { type: "number", min: 1, max: 50, value: 5, title: "frames to teach from", class: "teach-frames" });
  const files = el("input", { type: "file", accept: "image/png,image/jpeg", multiple: true, hidden: true, class: "upload-files" });
  files.addEventListener("change", async () => {
    if (!files.files.length) return;
    const form = new FormData();
    for (const f of files.files) form.append("images", f, f.name);
    const n = files.files.length;
    files.value = "";
    const done = await act("upload", `Store ${n} uploaded image(s) as a new reference version of ${recipe} / ${camera} and make it active?`,
      () => api(base, { method: "POST", body: form }));
    if (done) refreshReferences();
  });
  const actions = el("div", { class: "actions" });
  if (live) {
    actions.append(frames, el("button", {
      class: "action teach", text: "Teach from next frames",
      onclick: async () => {
        const n = Number(frames.value);
        const done = await act("teach", `Teach ${recipe} / ${camera} from the camera's next ${n} frame(s)? Make sure only good parts pass.`,
          () => api(`/api/v1/cameras/${encodeURIComponent(camera)}/teach`, { method: "POST", json: { frames: n, recipe } }));
        if (done) refreshReferences();
      },
    }));
  }
  actions.append(files, el("button", { class: "action upload", text: "Upload images…", onclick: () => files.click() }));
  if (entry.versions.length > 1) {
    actions.append(el("button", {
      class: "action rollback", text: "Roll back",
      onclick: async () => {
        const done = await act("roll back", `Make the version before ${entry.active} the active reference of ${recipe} / ${camera}?`,
          () => api(`${base}/rollback`, { method: "POST", json: {} }));
        if (done) refreshReferences();
      },
    }));
  }
  const versions = el("div", { class: "versions" });
  for (const v of [...entry.versions].reverse()) {
    const img = el("img", { alt: `${recipe}/${camera} ${v.version}` });
    setImage(img, `${base}/${encodeURIComponent(v.version)}/image.jpg?width=320`);
    const active = v.version === entry.active;
    const buttons = el("div", { class: "buttons" });
    if (!active) {
      buttons.append(el("button", {
        class: "action activate", text: "Activate",
        onclick: async () => {
          const done = await act("activate", `Make ${v.version} the active reference of ${recipe} / ${camera}?`,
            () => api(`${base}/rollback`, { method: "POST", json: { version: v.version } }));
          if (done) refreshReferences();
        },
      }));
    }
    buttons.append(el("button", {
      class: "action delete", text: "Delete",
      onclick: async () => {
        const done = await act("delete", `Delete reference ${v.version} of ${recipe} / ${camera}? This cannot be undone.`,
          () => api(`${base}/${encodeURIComponent(v.version)}`, { method: "DELETE" }));
        if (done) refreshReferences();
      },
    }));
    versions.append(el("div", { class: `version${active ? " active" : ""}`, "data-version": v.version },
      img,
      el("div", { class: "meta" },
        el("strong", { text: v.version }), active ? " · active" : "",
        el("div", { class: "muted", text: `${(v.created || "").replace("T", " ").slice(0, 19)}` }),
        el("div", { class: "muted", text: `${v.images} image(s)${v.created_by ? " · by " + v.created_by : ""}${v.source ? " · " + v.source : ""}` })),
      buttons));
  }
  if (!entry.versions.length) versions.append(el("p", { class: "empty", text: "No reference stored yet: teach or upload one." }));
  return el("div", { class: "card ref-card", "data-recipe": recipe, "data-camera": camera },
    el("div", { class: "card-head" },
      el("span", { class: "title", text: `${recipe} / ${camera}` }),
      el("span", { class: "muted", text: entry.active ? `active ${entry.active}` : "no active reference" }),
      actions),
    versions);
}

// ------------------------------------------------------------------ recipes

async function refreshRecipes() {
  const [doc, cams] = await Promise.all([api("/api/v1/recipes"), api("/api/v1/cameras")]);
  const names = doc.recipes.map((r) => r.name);
  const switches = $("#switches");
  switches.replaceChildren();
  for (const cam of cams.cameras.filter((c) => c.running)) {
    const sel = el("select", { class: "recipe-select" }, names.map((n) => el("option", { value: n, text: n, selected: n === cam.recipe })));
    switches.append(el("div", { class: "switch", "data-camera": cam.id },
      el("strong", { text: cam.id }), " runs ", sel, " ",
      el("button", {
        class: "action switch-recipe", text: "Switch",
        onclick: async () => {
          if (sel.value === cam.recipe) return;
          const done = await act("switch recipe", `Switch camera ${cam.id} from ${cam.recipe} to ${sel.value}?`,
            () => api(`/api/v1/cameras/${encodeURIComponent(cam.id)}/recipe`, { method: "PUT", json: { recipe: sel.value } }));
          if (done) refreshRecipes();
        },
      })));
  }
  const box = $("#recipes");
  box.replaceChildren(...doc.recipes.map((r) => el("div", { class: "card recipe-card", "data-recipe": r.name },
    el("div", { class: "card-head" },
      el("span", { class: "title", text: r.name }),
      el("span", { class: "muted", text: r.description || "" }),
      r.http_default ? el("span", { class: "badge", text: "HTTP default" }) : null),
    el("div", { class: "card-body" },
      el("dl", { class: "kv" },
        el("dt", { text: "cameras" }), el("dd", { text: r.cameras.join(", ") || "none" }),
        el("dt", { text: "checks" }), el("dd", { text: r.checks.join(", ") }),
        el("dt", { text: "needs reference" }), el("dd", { text: r.needs_reference ? "yes" : "no" }),
        el("dt", { text: "limits" }), el("dd", {}, el("ul", {}, r.limits.map((l) => el("li", {}, el("code", { text: l }))))),
        el("dt", { text: "options" }), el("dd", {}, el("pre", { text: JSON.stringify(r.options, null, 2) })))))));
}

// ------------------------------------------------------------------ health

function row(label, value, good) {
  const cell = el("td", { text: value });
  if (good === true) cell.className = "ok-text";
  if (good === false) cell.className = "bad-text";
  return el("tr", {}, el("td", { class: "muted", text: label }), cell);
}

async function refreshHealth() {
  const h = await api("/api/v1/health");
  const m = h.mqtt;
  const cards = [
    ["Station", [
      row("ready", h.ready ? "yes" : "no", h.ready),
      ...Object.entries(h.components).map(([k, v]) => row(k, v ? "up" : "down", v)),
      row("up for", `${Math.round(h.uptime_s)} s`),
    ]],
    ["MQTT", m.enabled ? [
      row("broker", m.broker),
      row("connected", m.connected ? "yes" : "no", m.connected),
      row("since", m.since ? `${m.since} (${ago(m.since)})` : "never"),
      row("outbox backlog", String(m.outbox), m.outbox < 1000),
      row("oldest waiting", `${m.outbox_oldest_age_s} s`),
      row("dead letters", String(m.dead_letters), m.dead_letters === 0),
      row("published", String(m.published)),
      row("sent again", String(m.retries)),
    ] : [row("MQTT", "off")]],
    ["Workers", [
      row("busy", `${h.workers.busy} of ${h.workers.total}`),
      ...Object.entries(h.workers.queues).map(([c, n]) => row(`queue ${c}`, String(n))),
    ]],
    ["Watchdog", [
      row("state", h.watchdog.healthy ? "healthy" : "stalled", h.watchdog.healthy),
      row("stalled for", `${h.watchdog.stalled_s} s`),
      row("event loop lag", `${(h.watchdog.event_loop_lag_s * 1000).toFixed(1)} ms`),
    ]],
  ];
  if (h.failures) cards.push(["Kept failures", [row("parts", String(h.failures.kept)), row("on disk", `${fmtBytes(h.failures.bytes)} of ${fmtBytes(h.failures.max_bytes)}`)]]);
  $("#health").replaceChildren(...cards.map(([title, rows]) => el("div", { class: "card", "data-card": title },
    el("div", { class: "card-head" }, el("span", { class: "title", text: title })),
    el("div", { class: "card-body" }, el("table", {}, el("tbody", {}, rows))))));
}

// ------------------------------------------------------------------ views and timers

function clearOverview() {
  tiles.clear();
  cameras = [];
  $("#tiles").replaceChildren();
}

function clearFailures() {
  partCards.clear();
  $("#failures").replaceChildren();
}

const views = {
  overview: { refresh: refreshCameras, every: STATUS_REFRESH_MS, clear: clearOverview },
  failures: { refresh: refreshFailures, every: SLOW_REFRESH_MS, clear: clearFailures },
  references: { refresh: refreshReferences, every: 0, clear: () => $("#references").replaceChildren() },
  recipes: {
    refresh: refreshRecipes, every: 0,
    clear: () => { $("#recipes").replaceChildren(); $("#switches").replaceChildren(); },
  },
  health: { refresh: refreshHealth, every: SLOW_REFRESH_MS, clear: () => $("#health").replaceChildren() },
  api: { refresh: async () => { const f = $("#api-frame"); if (!f.src) f.src = f.dataset.src; }, every: 0 },
};
let current = "overview";
let timer = null;

async function runView() {
  try {
    await views[current].refresh();
  } catch (err) {
    if (err.status === 401) {
      if (views[current].clear) views[current].clear(); // no data shown without the key
    } else {
      notice(`${current}: ${err.message}`);
    }
  }
}

function show(name) {
  if (!views[name]) name = "overview";
  current = name;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === name);
  for (const v of Object.keys(views)) $(`#view-${v}`).hidden = v !== name;
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  clearInterval(timer);
  runView();
  if (views[name].every) timer = setInterval(runView, views[name].every);
}

async function loadNode() {
  try {
    const h = await api("/api/v1/health");
    $("#node").textContent = `node ${h.node} · edged ${h.version}`;
    document.title = `edged · ${h.node}`;
  } catch (_) { /* shown without */ }
}

function init() {
  showKeyState();
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.view));
  $("#key-button").addEventListener("click", () => askKey(""));
  $("#key-dialog").addEventListener("close", () => {
    keyDialogOpen = false;
    const how = $("#key-dialog").returnValue;
    if (how === "ok" && $("#key-input").value) sessionStorage.setItem(KEY_STORE, $("#key-input").value);
    if (how === "clear") sessionStorage.removeItem(KEY_STORE);
    showKeyState();
    if (how === "ok") { show(current); loadNode(); }
  });
  $("#part-close").addEventListener("click", () => $("#part-dialog").close());
  $("#failure-camera").addEventListener("change", () => { $("#failures").replaceChildren(); partCards.clear(); runView(); });
  setInterval(() => { if (current === "overview" && !document.hidden) refreshFrames(); }, FRAME_REFRESH_MS);
  loadNode();
  show(location.hash.slice(1) || "overview");
}

document.addEventListener("DOMContentLoaded", init);
