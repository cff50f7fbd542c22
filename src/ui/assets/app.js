// baton ui: the page. No build step: plain DOM, data from /api/*, live from /events.
"use strict";

// ---- small helpers --------------------------------------------------------------

/** An element: h("a", {href: "#"}, "text", child…). Text is always text, never HTML. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST",
    headers: {"content-type": "application/json"},
    body: JSON.stringify(body),
  };
  const res = await fetch(path, opts);
  const doc = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((doc.error && doc.error.message) || res.statusText);
  return doc;
}

function toast(text, bad) {
  const box = h("div", {class: bad ? "bad" : ""}, text);
  document.getElementById("toast").append(box);
  setTimeout(() => box.remove(), bad ? 9000 : 4000);
}

function status(s) { return h("span", {class: "badge s-" + s, "data-status": s}, s); }
function taskLink(id) { return h("a", {href: "#/task/" + id, class: "mono"}, id); }
function pathLink(p) { return h("a", {href: "#/artifact/" + encodeURIComponent(p)}, p); }
function time(ts) { return ts ? ts.slice(11, 19) : ""; }
function ms(n) {
  if (n === null || n === undefined) return "";
  if (n < 1000) return n + " ms";
  const s = n / 1000;
  return s < 120 ? s.toFixed(1) + " s" : Math.round(s / 60) + " min";
}
function debounce(fn, wait) {
  let t = null;
  return () => { if (t) return; t = setTimeout(() => { t = null; fn(); }, wait); };
}

// ---- state and routing ----------------------------------------------------------

const state = {
  lastSeq: 0,
  route: null,
  rows: new Map(),     // task id (or "seq:N") → feed row, for the live feed
  order: [],           // keys, newest first
  nextBefore: null,
  filters: {agent: "", stage: "", failed: false, q: ""},
  now: null,
  taskTimer: null,
};

function route() {
  const hash = location.hash.slice(1) || "/";
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean);
  return {name: parts[0] || "now", arg: parts.slice(1).join("/"), query: new URLSearchParams(query || "")};
}

window.addEventListener("hashchange", show);
// Live updates start from the journal position the first data was read at.
window.addEventListener("DOMContentLoaded", async () => { await refreshNow(); show(); connect(); });

function show() {
  clearInterval(state.taskTimer);
  state.note = "";
  state.route = route();
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === state.route.name);
  }
  const view = document.getElementById("view");
  view.replaceChildren();
  const r = state.route;
  if (r.name !== "now") refreshNow();   // the header's daemon and workspace
  if (r.name === "task") return showTask(view, decodeURIComponent(r.arg));
  if (r.name === "artifact") return showArtifact(view, decodeURIComponent(r.arg), r.query);
  if (r.name === "search") return showSearch(view, r.query);
  return showNow(view);
}

// ---- now + feed -----------------------------------------------------------------

async function showNow(view) {
  const left = h("div", {id: "now"});
  const right = h("div", {id: "feed-card"});
  view.append(h("div", {class: "grid"}, left, right));
  right.append(feedPanel());
  await Promise.all([refreshNow(), loadFeed(true)]);
}

async function refreshNow() {
  let doc;
  try { doc = await api("/api/now"); } catch (e) { return toast(e.message, true); }
  state.now = doc;
  state.lastSeq = Math.max(state.lastSeq, doc.last_seq || 0);
  const d = document.getElementById("daemon");
  d.textContent = doc.daemon.running ? "daemon running" : "no daemon: history only";
  d.className = "badge " + (doc.daemon.running ? "on" : "off");
  document.getElementById("workspace").textContent = doc.workspace;
  const box = document.getElementById("now");
  if (!box) return;
  box.replaceChildren(
    h("h2", {}, "Problems"), problems(doc),
    h("h2", {}, "Agents"), agents(doc),
    h("h2", {}, "Running"), running(doc),
    h("h2", {}, "Drop a brief"), dropForm(doc),
  );
}

function problems(doc) {
  const out = [];
  const item = (cls, t, text, extra) => out.push(h("div", {class: "problem " + cls, "data-problem": t.id},
    status(t.status), " ", taskLink(t.id), " ", h("b", {}, t.agent), " ", pathLink(t.input), " ",
    h("span", {class: "dim"}, text || ""), extra || ""));
  const now = Date.parse(doc.now);
  for (const row of doc.held) item("warn", row, "held for approval → " + row.outputs.map(o => o.path).join(", "));
  for (const row of doc.escalated || []) item("", row, row.error || "escalated: waits for a person");
  for (const row of doc.dead) item("", row, row.error || "dead");
  for (const row of doc.retrying) item("warn", row, row.error || "retrying");
  for (const row of doc.running.concat(doc.queued)) {
    if (row.deadline && Date.parse(row.deadline) < now) item("", row, "past its deadline " + row.deadline);
  }
  for (const r of doc.rejected) out.push(h("div", {class: "problem"}, status("rejected"), " ", pathLink(r.path), " ", h("span", {class: "dim"}, r.error)));
  return out.length ? h("div", {class: "problems"}, out) : h("p", {class: "dim"}, "Nothing is stuck.");
}

function agents(doc) {
  return h("table", {id: "agents"},
    h("tr", {}, h("th", {}, "agent"), h("th", {}, "running"), h("th", {}, "queued"), h("th", {}, "does")),
    doc.agents.map(a => h("tr", {"data-agent": a.name},
      h("td", {}, h("b", {}, a.name)),
      h("td", {}, `${a.running}/${a.concurrency}`),
      h("td", {}, a.queued + (a.rate_limited ? ` (${a.rate_limited} rate-limited)` : "")),
      h("td", {class: "dim"}, a.broken ? h("span", {class: "err"}, a.broken) : (a.description || a.on.join(" "))))));
}

function running(doc) {
  const rows = doc.running.concat(doc.committing, doc.interrupted);
  if (!rows.length) return h("p", {class: "dim"}, doc.queued.length ? `${doc.queued.length} queued` : "Nothing runs.");
  const started = Date.now();
  return h("table", {},
    rows.map(t => {
      const el = h("td", {class: "elapsed", "data-ms": t.elapsed_ms || 0, "data-at": started}, ms(t.elapsed_ms));
      return h("tr", {}, h("td", {}, taskLink(t.id)), h("td", {}, t.agent), h("td", {}, pathLink(t.input)), el);
    }));
}
setInterval(() => {
  for (const el of document.querySelectorAll(".elapsed")) {
    el.textContent = ms(Number(el.dataset.ms) + Date.now() - Number(el.dataset.at));
  }
}, 1000);

function dropForm(doc) {
  const name = h("input", {name: "name", placeholder: "name.md", required: true});
  const content = h("textarea", {name: "content", placeholder: "# What to do"});
  const to = h("select", {name: "to"}, h("option", {value: ""}, "any agent by its globs"),
    doc.agents.map(a => h("option", {value: a.name}, a.name)));
  const form = h("form", {id: "drop", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("/api/drop", {name: name.value, content: content.value, to: to.value || null});
      toast(r.message); name.value = ""; content.value = "";
    } catch (e) { toast(e.message, true); }
  }}, h("div", {class: "filters"}, name, to, h("button", {class: "primary", type: "submit"}, "Drop")), content);
  return form;
}

function feedPanel() {
  const f = state.filters;
  const agent = h("input", {placeholder: "agent", value: f.agent, name: "agent"});
  const stage = h("input", {placeholder: "stage", value: f.stage, name: "stage"});
  const text = h("input", {placeholder: "text", value: f.q, name: "q"});
  const failed = h("input", {type: "checkbox", name: "failed"});
  failed.checked = f.failed;
  const apply = () => {
    Object.assign(state.filters, {agent: agent.value.trim(), stage: stage.value.trim(), q: text.value.trim(), failed: failed.checked});
    loadFeed(true);
  };
  for (const el of [agent, stage, text]) el.addEventListener("change", apply);
  failed.addEventListener("change", apply);
  return h("div", {},
    h("h2", {}, "Feed"),
    h("div", {class: "filters"}, agent, stage, text, h("label", {}, failed, " failed only")),
    h("div", {id: "feed"}),
    h("button", {id: "more", onclick: () => loadFeed(false)}, "Older"));
}

function feedQuery(before) {
  const p = new URLSearchParams();
  const f = state.filters;
  if (f.agent) p.set("agent", f.agent);
  if (f.stage) p.set("stage", f.stage);
  if (f.q) p.set("q", f.q);
  if (f.failed) p.set("failed", "true");
  if (before) p.set("before", before);
  return "/api/feed?" + p;
}

async function loadFeed(fresh) {
  if (fresh) { state.rows.clear(); state.order = []; state.nextBefore = null; }
  let doc;
  try { doc = await api(feedQuery(fresh ? null : state.nextBefore)); } catch (e) { return toast(e.message, true); }
  state.lastSeq = Math.max(state.lastSeq, doc.last_seq || 0);
  for (const row of doc.rows) {
    const key = row.kind === "task" ? row.task : "seq:" + row.seq;
    if (state.rows.has(key)) continue;   // shown already, from a newer page
    state.rows.set(key, row);
    state.order.push(key);
  }
  state.nextBefore = doc.next_before;
  renderFeed();
}

function rowMatches(row) {
  const f = state.filters;
  const paths = [row.input, row.path].concat(row.outputs || []).filter(Boolean);
  if (f.agent && row.agent !== f.agent && row.by !== f.agent) return false;
  if (f.stage && !paths.some(p => p.split("/")[0] === f.stage)) return false;
  if (f.failed && !(row.kind === "rejected" || ["dead", "failed", "escalated"].includes(row.status))) return false;
  if (f.q) {
    const q = f.q.toLowerCase();
    if (![row.task, row.agent, row.error, row.by].concat(paths).some(s => s && s.toLowerCase().includes(q))) return false;
  }
  return true;
}

/** The whole feed, drawn again (after a page of rows is loaded). */
function renderFeed() {
  const box = document.getElementById("feed");
  if (!box) return;
  const more = document.getElementById("more");
  if (more) more.hidden = !state.nextBefore;
  box.replaceChildren(...state.order.map(k => state.rows.get(k)).filter(rowMatches).slice(0, FEED_SHOWN).map(rowElement));
}

/** The feed rows shown at most; older ones are a click away ("Older"). */
const FEED_SHOWN = 300;

/** One row moved to the top, drawn anew: the only DOM work a live entry costs. */
function renderRow(key) {
  const box = document.getElementById("feed");
  if (!box) return;
  const old = box.querySelector(`[data-row="${CSS.escape(key)}"]`);
  if (old) old.remove();
  const row = state.rows.get(key);
  if (!row || !rowMatches(row)) return;
  const el = rowElement(row);
  el.classList.add("fresh");
  box.prepend(el);
  while (box.childElementCount > FEED_SHOWN) box.lastElementChild.remove();
}

function rowElement(row) {
  const key = row.kind === "task" ? row.task : "seq:" + row.seq;
  const cls = "row";
  if (row.kind === "artifact") {
    return h("div", {class: cls, "data-row": key}, h("span", {class: "dim mono"}, time(row.ts)), h("span", {}, row.by),
      h("span", {class: "what"}, row.by === "human" ? "dropped " : "appeared ", pathLink(row.path)), h("span"));
  }
  if (row.kind === "rejected") {
    return h("div", {class: cls, "data-row": key}, h("span", {class: "dim mono"}, time(row.ts)), h("span", {}, "baton"),
      h("span", {class: "what"}, pathLink(row.path), " ", h("span", {class: "err"}, row.error)), status("rejected"));
  }
  const outs = (row.outputs || []).map(p => [" ", pathLink(p)]);
  return h("div", {class: cls, "data-row": key, "data-task": row.task},
    h("span", {class: "dim mono"}, time(row.ts)),
    h("b", {}, row.agent),
    h("span", {class: "what"}, taskLink(row.task), " on ", pathLink(row.input),
      row.reason && row.reason !== "glob" ? h("span", {class: "dim"}, ` (${row.reason})`) : "",
      outs.length ? [" →", outs] : "",
      row.error && row.status !== "done" ? h("div", {class: "err"}, row.error) : ""),
    h("span", {}, status(row.status), row.attempt > 1 ? h("span", {class: "badge", title: "attempts"}, "×" + row.attempt) : "",
      row.duration_ms !== null && row.duration_ms !== undefined && row.status !== "running" ? h("span", {class: "dim"}, " " + ms(row.duration_ms)) : ""));
}

/** Folds one journal entry into the feed's rows, as the server would have. */
function fold(e) {
  const id = e.task;
  if (e.kind === "artifact") {
    if (e.by === "human" || e.by === "external") addRow("seq:" + e.seq, {kind: "artifact", seq: e.seq, ts: e.ts, path: e.path, by: e.by});
    return;
  }
  if (e.kind === "rejected") return addRow("seq:" + e.seq, {kind: "rejected", seq: e.seq, ts: e.ts, path: e.path, error: e.error});
  if (!id) return;
  let row = state.rows.get(id);
  if (e.kind === "task.queued") {
    row = Object.assign(row || {kind: "task", task: id, attempt: 0, outputs: []},
      {agent: e.agent, input: e.input, reason: e.reason, parent: e.parent, status: "queued", error: null});
  }
  if (!row) { api("/api/task/" + id).then(d => { addRow(id, Object.assign(d.task, {ts: e.ts})); }).catch(() => {}); return; }
  row.ts = e.ts; row.seq = e.seq;
  switch (e.kind) {
    case "task.started": row.status = "running"; row.attempt = e.attempt; break;
    case "task.committing": row.status = "committing"; break;
    case "task.finished":
      row.status = e.status; row.attempt = Math.max(row.attempt || 0, e.attempt); row.error = e.error || null;
      row.outputs = (e.outputs || []).map(o => o.path); row.duration_ms = e.duration_ms; break;
    case "approval": row.status = e.decision === "approved" ? "done" : "dead"; if (e.note && row.status === "dead") row.error = "rejected: " + e.note; break;
    case "task.cancelled": row.status = "dead"; row.error = "cancelled by " + e.by; break;
    case "task.escalated": row.status = "escalated"; break;
    case "task.resolved": row.status = "done"; row.error = null; row.outputs = e.outputs.map(o => o.path); break;
  }
  addRow(id, row);
}

function addRow(key, row) {
  const known = state.rows.has(key);
  state.rows.set(key, row);
  if (known) {
    const at = state.order.indexOf(key);
    if (at > 0) { state.order.splice(at, 1); state.order.unshift(key); }
  } else {
    state.order.unshift(key);
  }
  renderRow(key);
}

// ---- live -----------------------------------------------------------------------

let source = null;
function connect() {
  if (source) source.close();
  // The first connection asks for what came after the data the page read; a reconnect
  // sends Last-Event-ID by itself.
  source = new EventSource("/events?after=" + state.lastSeq);
  const live = document.getElementById("live");
  source.onopen = () => { live.textContent = "live"; live.className = "badge on"; };
  source.onerror = () => { live.textContent = "reconnecting"; live.className = "badge dim"; };
  source.addEventListener("entry", (m) => {
    const e = JSON.parse(m.data);
    state.lastSeq = Math.max(state.lastSeq, e.seq);
    onEntry(e);
  });
  source.addEventListener("resync", () => { show(); });
}

const nowSoon = debounce(refreshNow, 250);
const taskSoon = debounce(() => { if (state.route.name === "task") refreshTask(); }, 250);

function onEntry(e) {
  if (state.route.name === "now") { fold(e); nowSoon(); }
  if (state.route.name === "task" && (e.task || e.kind === "artifact")) taskSoon();
}

// ---- a task ---------------------------------------------------------------------

let taskId = null;
async function showTask(view, id) {
  taskId = id;
  view.append(h("div", {id: "task"}, h("p", {class: "dim"}, "Loading " + id + "…")));
  await refreshTask();
  state.taskTimer = setInterval(() => { if (logState.running) loadLogs(false); }, 1000);
}

const logState = {stream: "stderr", next: 0, running: false, attempt: null};

async function refreshTask() {
  let doc;
  try { doc = await api("/api/task/" + encodeURIComponent(taskId)); } catch (e) {
    document.getElementById("task").replaceChildren(h("p", {class: "err"}, e.message)); return;
  }
  const t = doc.task;
  const box = document.getElementById("task");
  if (!box) return;
  // What a person typed survives the view being redrawn by live updates.
  const note = h("input", {placeholder: "note (why)", name: "note", size: 40, value: state.note || "",
    oninput: (ev) => { state.note = ev.target.value; }});
  const act = (what) => async () => {
    try {
      const r = await api("/api/" + what, {task: t.task, note: note.value || null});
      state.note = ""; toast(r.message); refreshTask();
    }
    catch (e) { toast(e.message, true); }
  };
  const buttons = doc.actions.map(a => h("button", {class: a === "approve" ? "primary" : (a === "reject" || a === "cancel" ? "danger" : ""), "data-action": a, onclick: act(a)}, a));
  const logs = h("pre", {id: "log"});
  const streams = h("select", {id: "stream", onchange: (ev) => { logState.stream = ev.target.value; loadLogs(true); }},
    h("option", {value: "stderr"}, "stderr"), h("option", {value: "stdout"}, "stdout"));
  streams.value = logState.stream;
  box.replaceChildren(
    h("h2", {}, h("span", {class: "mono"}, t.task), " ", status(t.status), " ", h("b", {}, t.agent), " on ", pathLink(t.input)),
    buttons.length ? h("div", {class: "actions"}, buttons, doc.actions.some(a => a === "approve" || a === "reject") ? note : "") : "",
    h("h2", {}, "Delegation tree"),
    h("div", {class: "tree", id: "tree"}, h("ul", {}, doc.trace.trees.map(node))),
    h("h2", {}, "Details"),
    h("table", {class: "kv"},
      kv("reason", t.reason), kv("parent", t.parent ? taskLink(t.parent) : "—"),
      kv("attempts", t.attempt), kv("duration", ms(t.duration_ms)), kv("cost", t.cost),
      kv("deadline", t.deadline || "—"), kv("budget", t.budget === null ? "—" : t.budget),
      kv("outputs", t.outputs.length ? t.outputs.map(p => [pathLink(p), " "]) : "—"),
      t.error ? kv("error", h("span", {class: "err"}, t.error)) : "",
      t.result && t.result.summary ? kv("summary", t.result.summary) : ""),
    h("h2", {}, "Logs ", streams),
    logs,
    h("h2", {}, "task.json"),
    h("pre", {}, doc.task_json ? JSON.stringify(doc.task_json, null, 2) : "(no attempt yet)"),
  );
  logState.running = t.status === "running";
  await loadLogs(true);
}

function kv(k, v) { return h("tr", {}, h("td", {}, k), h("td", {}, v)); }

function node(n) {
  const box = h("span", {class: "box" + (n.focus ? " focus" : ""), "data-node": n.task},
    h("b", {}, n.agent), taskLink(n.task), status(n.status),
    n.reason && n.reason !== "glob" ? h("span", {class: "dim"}, n.reason) : "",
    n.duration_ms !== null && n.duration_ms !== undefined ? h("span", {class: "dim"}, ms(n.duration_ms)) : "",
    n.cost ? h("span", {class: "dim"}, "cost " + n.cost) : "",
    (n.reads || []).length ? h("span", {}, "reads ", n.reads.map(p => [pathLink(p), " "])) : "",
    (n.writes || []).length ? h("span", {}, "→ ", n.writes.map(p => [pathLink(p), " "])) : "",
    n.error ? h("span", {class: "err"}, n.error) : "");
  const kids = (n.children || []).map(node);
  const refused = (n.refused || []).map(r => h("li", {class: "node"}, h("span", {class: "box"}, status("rejected"), pathLink(r.path), h("span", {class: "err"}, r.error))));
  return h("li", {class: "node"}, box, kids.length || refused.length ? h("ul", {}, kids, refused) : "");
}

async function loadLogs(fresh) {
  const pre = document.getElementById("log");
  if (!pre) return;
  if (fresh) { logState.next = null; pre.textContent = ""; }
  const p = new URLSearchParams({stream: logState.stream});
  if (logState.next !== null) p.set("from", logState.next);
  try {
    const doc = await api(`/api/logs/${encodeURIComponent(taskId)}?` + p);
    pre.append(doc.text);
    logState.next = doc.next;
    const wasRunning = logState.running;
    logState.running = doc.running;
    if (!pre.textContent) pre.textContent = doc.attempts ? "(empty)" : "(no attempt yet)";
    if (wasRunning && !doc.running) refreshTask();
  } catch (e) { pre.textContent = e.message; }
}

// ---- an artifact ----------------------------------------------------------------

async function showArtifact(view, path, query) {
  const v = query.get("v");
  const p = new URLSearchParams({path});
  if (v) p.set("version", v);
  let doc;
  try { doc = await api("/api/artifact?" + p); } catch (e) { return view.append(h("p", {class: "err"}, e.message)); }
  const versions = doc.who.versions;
  const shown = doc.version || doc.who.on_disk;
  let body;
  if (doc.missing) body = h("p", {class: "dim"}, "Not on disk (and no kept copy of this version).");
  else if (doc.binary) body = h("p", {class: "dim"}, `A binary file of ${doc.size} bytes.`);
  else if (doc.html !== undefined) { body = h("div", {class: "md", id: "content"}); body.innerHTML = doc.html; }
  else body = h("pre", {id: "content"}, doc.text);
  const from = h("select", {id: "diff-from"}, versions.map(x => h("option", {value: x.hash}, x.hash.slice(0, 12) + " " + x.ts.slice(0, 19))));
  const to = h("select", {id: "diff-to"}, versions.map(x => h("option", {value: x.hash}, x.hash.slice(0, 12) + " " + x.ts.slice(0, 19))));
  if (versions.length > 1) { from.value = versions[versions.length - 2].hash; to.value = versions[versions.length - 1].hash; }
  const diffBox = h("div", {class: "diff", id: "diff"});
  view.append(
    h("h2", {}, path, doc.cut ? h("span", {class: "dim"}, " (first MiB)") : ""),
    body,
    h("h2", {}, "Versions"),
    h("table", {id: "versions"}, h("tr", {}, h("th", {}, "version"), h("th", {}, "by"), h("th", {}, "task"), h("th", {}, "when"), h("th", {}, "size")),
      versions.slice().reverse().map(x => h("tr", {"data-version": x.hash},
        h("td", {}, h("a", {href: `#/artifact/${encodeURIComponent(path)}?v=${x.hash}`, class: "mono"}, x.hash.slice(0, 12)), x.hash === shown ? " ◀" : ""),
        h("td", {}, x.by), h("td", {}, x.task ? taskLink(x.task) : "—"), h("td", {}, x.ts.slice(0, 19)), h("td", {}, x.size)))),
    versions.length > 1 ? h("div", {class: "actions"}, "diff ", from, " → ", to, h("button", {onclick: async () => {
      try {
        const d = await api(`/api/diff?` + new URLSearchParams({path, from: from.value, to: to.value}));
        diffBox.replaceChildren(...d.lines.map(l => h("div", {class: l.op}, (l.op === "insert" ? "+ " : l.op === "delete" ? "- " : "  ") + l.text)));
      } catch (e) { toast(e.message, true); }
    }}, "Show")) : "",
    diffBox);
}

// ---- search ---------------------------------------------------------------------

function showSearch(view, query) {
  const q = h("input", {name: "q", placeholder: "words, \"a phrase\", stage:drafts author:writer", size: 50, value: query.get("q") || ""});
  const stage = h("input", {name: "stage", placeholder: "stage", value: query.get("stage") || ""});
  const results = h("div", {id: "results"});
  const run = async () => {
    if (!q.value.trim()) return;
    const p = new URLSearchParams({q: q.value});
    if (stage.value.trim()) p.set("stage", stage.value.trim());
    try {
      const doc = await api("/api/search?" + p);
      results.replaceChildren(doc.hits.length ? "" : h("p", {class: "dim"}, "No match."), ...doc.hits.map(hit));
    } catch (e) { results.replaceChildren(h("p", {class: "err"}, e.message)); }
  };
  view.append(h("form", {class: "filters", id: "search", onsubmit: (ev) => { ev.preventDefault(); run(); }}, q, stage, h("button", {class: "primary", type: "submit"}, "Search")), results);
  if (q.value) run();
  q.focus();
}

function hit(x) {
  // The snippet with its matched byte ranges marked, as text (never as HTML).
  const bytes = new TextEncoder().encode(x.snippet);
  const dec = new TextDecoder();
  const parts = [];
  let at = 0;
  for (const s of x.spans || []) {
    parts.push(dec.decode(bytes.slice(at, s.start)), h("mark", {}, dec.decode(bytes.slice(s.start, s.end))));
    at = s.end;
  }
  parts.push(dec.decode(bytes.slice(at)));
  return h("div", {class: "hit", "data-hit": x.path},
    h("div", {}, pathLink(x.path), " ", h("span", {class: "dim"}, x.title || ""), " ", h("span", {class: "badge"}, x.author), x.task ? [" ", taskLink(x.task)] : ""),
    h("div", {class: "dim"}, parts));
}
