/* Branchwork's web UI: plain JavaScript over the HTTP API and its Server-Sent Events.
 *
 * One page. The address says what is shown: #/p/PROJECT (a project's sessions) and
 * #/s/SESSION (a session); #/p/PROJECT/tasks… and #/p/PROJECT/proposals… are work.js's. Each session's view is built once and kept (its DOM, its stream,
 * its terminal) while you switch to others. Streams are read with fetch (not EventSource) so
 * that a share link can send its token as a header; they resume with Last-Event-ID.
 */
"use strict";

const state = {
  shareToken: null,       // set on /share: every call sends it as a bearer token
  token: null,            // the browser's token (kept per origin, never a cookie: see login)
  me: null,
  projects: [],
  project: null,          // the project whose sessions the sidebar shows
  sessions: new Map(),    // id -> summary (from the project stream)
  views: new Map(),       // session id -> SessionView
  loading: new Map(),     // session id or short id -> the view being made for it
  asked: 0,               // how many sessions were asked for: the last asked is shown
  current: null,          // the SessionView shown
  projectStream: null,
  notify: false,
};

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
};

// -- the API -------------------------------------------------------------------------------

function headers(extra = {}) {
  const h = { ...extra };
  const token = state.shareToken || state.token;
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = (data && data.detail) || `${response.status} ${response.statusText}`;
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  return data;
}

function toast(text, kind = "info") {
  const box = $("#toast");
  box.textContent = text;
  box.className = kind;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 8000 : 3500);
}

function failed(error) {
  toast(error.message || String(error), "error");
}

/* A Server-Sent Events reader over fetch: calls on(type, data, id) for each message and
 * reconnects (with Last-Event-ID) when the connection drops, until stop() is called. Starts
 * after `lastId` when given; `lastId` of what it returns says where to resume. */
function openStream(path, on, lastId = null) {
  const controller = { stopped: false, lastId, abort: null };
  const connect = async () => {
    while (!controller.stopped) {
      const abort = new AbortController();
      controller.abort = abort;
      try {
        const h = headers({ Accept: "text/event-stream" });
        if (controller.lastId !== null) h["Last-Event-ID"] = controller.lastId;
        const response = await fetch(path, { headers: h, signal: abort.signal });
        if (response.status === 401 || response.status === 404 || response.status === 403) {
          const data = await response.json().catch(() => ({}));
          toast(data.detail || "the stream was refused", "error");
          return;
        }
        await readEvents(response.body.getReader(), (type, data, id) => {
          if (id !== null) controller.lastId = id;
          on(type, data, id);
        });
      } catch (error) {
        if (controller.stopped) return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  connect();
  return {
    stop() { controller.stopped = true; if (controller.abort) controller.abort.abort(); },
    get lastId() { return controller.lastId; },
  };
}

async function readEvents(reader, on) {
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let type = "message", id = null;
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") type = val;
        else if (field === "data") data.push(val);
        else if (field === "id") id = val;
      }
      if (data.length) on(type, data.join("\n"), id);
    }
  }
}

// -- start, login, routing -----------------------------------------------------------------

async function start() {
  if (location.pathname === "/login") return login();
  if (location.pathname === "/share") {
    state.shareToken = location.hash.slice(1) || sessionStorage.getItem("bw_share");
    if (state.shareToken) sessionStorage.setItem("bw_share", state.shareToken);
    history.replaceState(null, "", "/share");
  } else {
    state.token = localStorage.getItem("bw_token");
  }
  try {
    state.me = await api("GET", "/api/me");
  } catch (error) {
    $("#main").replaceChildren(el("div", { class: "empty" },
      "You are not logged in. Open the login link `branchwork serve --local` printed, ",
      "or ask an admin for one (`branchwork user login NAME`)."));
    return;
  }
  $("#who").textContent = state.me.name + (state.me.session_id ? " (share link, read only)" : "");
  $("#logout").addEventListener("click", logout);
  $("#notify").addEventListener("click", enableNotifications);
  $("#new-session").addEventListener("click", () => { const f = $("#new-session-form"); f.hidden = !f.hidden; });
  $("#new-session-form").addEventListener("submit", newSession);
  $("#show-archived").addEventListener("change", () => renderSessionList());
  if (state.me.session_id) {
    document.body.classList.add("read-only");
    $("#side").hidden = true;
    return showSession(state.me.session_id);
  }
  await loadProjects();
  window.addEventListener("hashchange", route);
  route();
}

/* The one-time token of the link is exchanged for the browser's token, kept in localStorage:
 * per origin, so a session's dev server on another port of this host never sees it (a cookie
 * would be sent to every port). */
async function login() {
  const token = location.hash.slice(1);
  history.replaceState(null, "", "/login");
  try {
    const logged = await api("POST", "/api/login", { token });
    localStorage.setItem("bw_token", logged.token);
    location.replace("/");
  } catch (error) {
    $("#main").replaceChildren(el("div", { class: "empty error" }, error.message));
  }
}

async function logout() {
  try { await api("POST", "/api/logout"); } catch (error) { /* logged out anyway */ }
  sessionStorage.removeItem("bw_share");
  if (!state.shareToken) localStorage.removeItem("bw_token");
  location.replace("/");
}

function route() {
  const [, kind, id, page, number] = location.hash.split("/");
  if (kind === "p" && id && page) return routeWork(decodeURIComponent(id), page, number);
  if (kind === "p" && id) { hideWork(); return selectProject(decodeURIComponent(id)); }
  if (kind === "s" && id) return showSession(decodeURIComponent(id));
  if (state.projects.length === 1 && !state.project) location.hash = `#/p/${state.projects[0].name}`;
}

// -- projects and the session list ----------------------------------------------------------

async function loadProjects() {
  state.projects = await api("GET", "/api/projects");
  const list = $("#project-list");
  list.replaceChildren(...state.projects.map((p) =>
    el("li", {}, el("a", { href: `#/p/${encodeURIComponent(p.name)}`, "data-project": p.id }, p.name))));
  if (!state.projects.length) list.append(el("li", { class: "small" }, "No project yet: `branchwork project add PATH`."));
}

async function selectProject(key) {
  const project = state.projects.find((p) => p.name === key || p.id === key);
  if (!project) return toast(`no project ${key}`, "error");
  if (state.project && state.project.id === project.id) return;
  state.project = project;
  state.sessions.clear();
  for (const a of document.querySelectorAll("#project-list a")) a.classList.toggle("on", a.dataset.project === project.id);
  $("#sessions").hidden = false;
  $("#work-links").hidden = false;
  for (const a of document.querySelectorAll("#work-links a")) a.href = `#/p/${encodeURIComponent(project.name)}/${a.dataset.page}`;
  $("#crumbs").textContent = project.name;
  if (state.projectStream) state.projectStream.stop();
  state.projectStream = openStream(`/api/projects/${project.id}/stream`, onProjectMessage);
}

function onProjectMessage(type, data) {
  if (type === "snapshot") {
    state.sessions.clear();
    for (const s of JSON.parse(data)) state.sessions.set(s.id, { ...s, seen: s.last_seq });
  } else if (type === "session") {
    const s = JSON.parse(data);
    const before = state.sessions.get(s.id);
    noticeChange(before, s);
    workSessionChanged(s.id, !before);
    state.sessions.set(s.id, { ...s, seen: before ? before.seen : 0, done: before && before.done });
  }
  renderSessionList();
}

/* Badges and notifications: "needs approval" at once; "done" only once the session is idle
 * again (never while a turn or a command still runs). */
function noticeChange(before, after) {
  if (!before) return;
  const viewing = state.current && state.current.id === after.id && !document.hidden;
  if (after.activity === "needs_approval" && before.activity !== "needs_approval") {
    notify(`${after.title}: needs your approval`, after.id);
  }
  const ended = after.turns > before.turns || after.last_turn_status !== before.last_turn_status ||
    (before.activity !== "idle" && after.activity === "idle");
  if (ended && after.activity === "idle" && after.last_turn_status) {
    after.done = !viewing;
    notify(`${after.title}: turn ${after.last_turn_status}`, after.id);
  }
}

function renderSessionList() {
  const archived = $("#show-archived").checked;
  const items = [...state.sessions.values()]
    .filter((s) => archived || s.status === "active")
    .sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  $("#session-list").replaceChildren(...items.map((s) => {
    const badges = [];
    if (s.activity === "needs_approval") badges.push(el("span", { class: "badge warn" }, "approval"));
    else if (s.activity === "running") badges.push(el("span", { class: "badge run" }, "running"));
    else if (s.done) badges.push(el("span", { class: "badge done" }, "done"));
    if (s.status !== "active") badges.push(el("span", { class: "badge" }, s.status));
    const on = state.current && state.current.id === s.id;
    return el("li", { class: on ? "on" : "", "data-session": s.id },
      el("a", { href: `#/s/${s.id}` }, el("span", { class: "s-title" }, s.title || s.short_id), ...badges,
        el("span", { class: "s-branch" }, s.branch)));
  }));
}

async function newSession(event) {
  event.preventDefault();
  const form = event.target;
  try {
    const created = await api("POST", `/api/projects/${state.project.id}/sessions`, { title: form.title.value || null });
    form.reset();
    form.hidden = true;
    location.hash = `#/s/${created.id}`;
  } catch (error) { failed(error); }
}

// -- notifications --------------------------------------------------------------------------

async function enableNotifications() {
  if (!("Notification" in window)) return toast("this browser has no notifications", "error");
  const answer = await Notification.requestPermission();
  state.notify = answer === "granted";
  toast(state.notify ? "notifications on" : "notifications refused");
}

function notify(text, sessionId) {
  if (!state.notify || (state.current && state.current.id === sessionId && !document.hidden)) return;
  const n = new Notification("Branchwork", { body: text, tag: `${sessionId}:${text}` });
  n.onclick = () => { window.focus(); location.hash = `#/s/${sessionId}`; };
}

// -- a session ------------------------------------------------------------------------------

async function showSession(id) {
  const ask = ++state.asked;
  hideWork();
  const view = state.views.get(id) || await viewFor(id);
  if (!view) return;
  if (ask !== state.asked) {  // another session was asked for meanwhile: the last click wins
    if (view !== state.current) view.root.hidden = true;
    return;
  }
  state.views.delete(view.id);  // the Map's order is the order last shown
  state.views.set(view.id, view);
  for (const other of state.views.values()) other.root.hidden = other !== view;
  keepStreamsLive();
  $("#welcome") && ($("#welcome").hidden = true);
  state.current = view;
  const summary = state.sessions.get(view.id);
  if (summary) summary.done = false;
  renderSessionList();
}

/* One view per session, however often it is asked for at once: a link opened while the page
 * starts routes twice (the first route, then the `hashchange` it queued), and two views made
 * side by side would both be shown. */
function viewFor(id) {
  if (!state.loading.has(id)) {
    state.loading.set(id, makeView(id).finally(() => state.loading.delete(id)));
  }
  return state.loading.get(id);
}

async function makeView(id) {
  let details;
  try { details = await api("GET", `/api/sessions/${id}`); } catch (error) { failed(error); return null; }
  if (!state.me.session_id && (!state.project || state.project.id !== details.project.id)) {
    await selectProject(details.project.id);
  }
  const made = state.views.get(details.session.id);  // asked for by its other id meanwhile
  if (made) return made;
  const view = new SessionView(details);
  state.views.set(details.session.id, view);
  $("#main").append(view.root);
  return view;
}

/* A browser opens at most 6 connections to one server (HTTP/1.1) and a stream holds one: only
 * the sessions shown last keep theirs (the project's stream holds another, and requests need
 * the rest). A paused view resumes after the last event it has when it is shown again. */
const LIVE_VIEWS = 3;

function keepStreamsLive() {
  const views = [...state.views.values()];
  views.forEach((view, i) => (i < views.length - LIVE_VIEWS ? view.pause() : view.resume()));
}

const KIND_GROUPS = {
  messages: ["user_message", "agent_message", "reasoning"],
  tools: ["tool_call", "tool_result", "context_ref", "file_read", "todo_updated"],
  commands: ["command_started", "command_output", "command_finished", "terminal_opened", "terminal_closed"],
  files: ["file_written", "checkpoint", "reverted"],
  approvals: ["approval_requested", "approval_decided"],
  turns: ["turn_started", "turn_finished", "model_call", "interrupted", "compacted"],
};

class SessionView {
  constructor(details) {
    this.id = details.session.id;
    this.details = details;
    this.pending = new Set(details.state.pending_approvals);
    this.answerable = new Set(details.answerable_approvals);
    this.commands = new Map();   // command id -> its <details>
    this.approvals = new Map();  // request id -> its card
    this.calls = new Map();      // call id -> its <details>
    this.events = [];
    this.filters = new Set(Object.keys(KIND_GROUPS).concat(["other"]));
    this.root = $("#session-template").content.firstElementChild.cloneNode(true);
    this.root.dataset.session = this.id;
    this.fill(details);
    this.wire();
    this.stream = null;
    this.lastId = null;
    this.resume();
  }

  resume() {
    if (this.stream) return;
    const path = `/api/sessions/${this.id}/events/stream`;
    this.stream = openStream(path, (type, data) => this.onMessage(type, data), this.lastId);
  }

  pause() {
    if (!this.stream) return;
    this.lastId = this.stream.lastId;
    this.stream.stop();
    this.stream = null;
  }

  q(sel) { return this.root.querySelector(sel); }

  fill(details) {
    this.q(".title").textContent = details.session.title || details.session.short_id;
    this.q(".branch").textContent = details.session.branch;
    this.setActivity(details.session.activity);
    const filters = this.q(".filters");
    for (const group of this.filters) {
      const box = el("input", { type: "checkbox", checked: true, "data-group": group, onchange: (e) => {
        if (e.target.checked) this.filters.add(group); else this.filters.delete(group);
        this.renderTimeline();
      } });
      filters.append(el("label", {}, box, group));
    }
    filters.append(el("input", { type: "search", placeholder: "filter text", class: "filter-text",
      oninput: () => this.renderTimeline() }));
  }

  wire() {
    for (const tab of this.root.querySelectorAll(".tabs button")) {
      tab.addEventListener("click", () => this.showTab(tab.dataset.tab));
    }
    this.q(".composer").addEventListener("submit", (e) => { e.preventDefault(); this.send(); });
    this.q(".composer textarea").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.send(); }
    });
    const actions = {
      cancel: () => api("POST", `/api/sessions/${this.id}/cancel`).then(() => toast("asked the turn to stop")),
      "refresh-diff": () => this.loadDiff(),
      "open-terminal": () => this.openTerminal(),
      share: () => this.share(),
      "export-html": () => this.download("html"),
      "export-jsonl": () => this.download("jsonl"),
    };
    for (const [name, run] of Object.entries(actions)) {
      const button = this.q(`[data-action="${name}"]`);
      if (button) button.addEventListener("click", () => Promise.resolve(run()).catch(failed));
    }
    this.q('[name="against"]').addEventListener("change", () => this.loadDiff());
  }

  showTab(name) {
    for (const tab of this.root.querySelectorAll(".tabs button")) tab.classList.toggle("on", tab.dataset.tab === name);
    for (const pane of this.root.querySelectorAll(".pane")) pane.hidden = pane.dataset.pane !== name;
    if (name === "diff") this.loadDiff();
    if (name === "checkpoints") this.loadCheckpoints();
    if (name === "timeline") this.renderTimeline();
    if (name === "terminal" && this.fit) this.fit.fit();
  }

  setActivity(activity) {
    const badge = this.q(".activity");
    badge.textContent = activity === "needs_approval" ? "needs approval" : activity;
    badge.className = `badge activity ${activity}`;
    this.q('[data-action="cancel"]').hidden = activity === "idle";
  }

  async send() {
    const form = this.q(".composer");
    const text = form.text.value.trim();
    if (!text) return;
    const body = { text };
    if (form.mode.value) body.mode = form.mode.value;
    if (form.model.value.trim()) body.model = form.model.value.trim();
    try {
      await api("POST", `/api/sessions/${this.id}/messages`, body);
      form.text.value = "";
      this.setActivity("running");
    } catch (error) { failed(error); }
  }

  onMessage(type, data) {
    if (type === "live") return this.onLive(JSON.parse(data));
    if (type !== "event") return;
    const event = JSON.parse(data);
    this.events.push(event);
    this.apply(event);
    if (!this.q(".timeline").hidden) this.appendRow(event);
  }

  onLive(update) {
    const live = this.q(".live");
    live.hidden = false;
    if (update.channel === "step") this.q(".thinking").textContent = `thinking… (step ${update.text})`;
    else if (update.channel === "reasoning") this.q(".live-reasoning").textContent += update.text;
    else this.q(".live-text").textContent += update.text;
    this.scroll();
  }

  clearLive() {
    this.q(".live").hidden = true;
    for (const sel of [".thinking", ".live-reasoning", ".live-text"]) this.q(sel).textContent = "";
  }

  scroll() {
    const box = this.q(".messages");
    box.scrollTop = box.scrollHeight;
  }

  add(node) {
    this.q(".messages").append(node);
    this.scroll();
    return node;
  }

  apply(e) {
    const p = e.payload;
    const render = RENDER[e.kind];
    if (render) render.call(this, e, p);
    if (e.kind === "turn_started") this.setActivity("running");
    if (e.kind === "turn_finished") { this.clearLive(); this.setActivity(this.pending.size ? "needs_approval" : "idle"); }
    if (e.kind === "check_run" && !p.passed && e.seq > this.details.state.last_seq) notify(`${this.details.session.title}: check ${p.check} failed`, this.id);
  }

  approvalCard(e, p) {
    const buttons = el("span", { class: "answer" });
    const card = el("div", { class: "card approval", "data-request": p.request_id },
      el("div", {}, el("b", {}, "Approval needed: "), p.summary), el("pre", {}, p.detail), buttons);
    const live = this.pending.has(p.request_id) || e.seq > this.details.state.last_seq;
    if (live && !state.me.session_id) {
      this.pending.add(p.request_id);
      const answer = (approved) => api("POST", `/api/sessions/${this.id}/approvals/${p.request_id}`, { approved, reason: approved ? "" : "refused in the web UI" })
        .catch(failed);
      buttons.append(el("button", { type: "button", class: "approve", onclick: () => answer(true) }, "Approve"),
        el("button", { type: "button", class: "refuse", onclick: () => answer(false) }, "Refuse"));
      this.setActivity("needs_approval");
    }
    this.approvals.set(p.request_id, card);
    return this.add(card);
  }

  renderTimeline() {
    const body = this.q(".events tbody");
    body.replaceChildren();
    for (const e of this.events) this.appendRow(e);
  }

  appendRow(e) {
    const group = Object.keys(KIND_GROUPS).find((g) => KIND_GROUPS[g].includes(e.kind)) || "other";
    if (!this.filters.has(group)) return;
    const text = summarize(e);
    const needle = this.q(".filter-text").value.toLowerCase();
    if (needle && !`${e.kind} ${text}`.toLowerCase().includes(needle)) return;
    this.q(".events tbody").append(el("tr", { class: `k-${group}` }, el("td", {}, e.seq),
      el("td", {}, e.ts.slice(11, 19)), el("td", {}, e.actor), el("td", {}, e.kind), el("td", {}, text)));
  }

  async loadDiff() {
    const against = this.q('[name="against"]').value;
    const data = await api("GET", `/api/sessions/${this.id}/diff?against=${encodeURIComponent(against)}`);
    const code = this.q(".diff-view code");
    code.textContent = data.diff || "(no changes)";
    delete code.dataset.highlighted;
    if (window.hljs && data.diff) hljs.highlightElement(code);
  }

  async loadCheckpoints() {
    const found = await api("GET", `/api/sessions/${this.id}/checkpoints`);
    const list = this.q(".checkpoint-list");
    const base = this.details.session.base_commit;
    list.replaceChildren(el("li", { class: "base" }, el("code", {}, base.slice(0, 10)), " base: where the session began",
      el("button", { type: "button", class: "revert", onclick: () => this.revert("base") }, "Revert to this")),
    ...found.map((c) => el("li", {},
      el("code", {}, c.commit.slice(0, 10)), " ", c.message, el("span", { class: "small" }, ` ${c.files.length} file(s), event #${c.seq}`),
      el("button", { type: "button", class: "revert", onclick: () => this.revert(c.commit) }, "Revert to this"),
      el("button", { type: "button", class: "fork", onclick: () => this.fork(c.commit).catch(failed) }, "Fork"))));
    if (!found.length) list.append(el("li", { class: "small" }, "No checkpoint yet: one is taken after every change."));
  }

  async revert(commit) {
    if (!confirm(`Restore the files of ${commit === "base" ? "the session's base" : "checkpoint " + commit.slice(0, 10)}? (a new checkpoint; history is kept)`)) return;
    const done = await api("POST", `/api/sessions/${this.id}/revert`, { to: commit });
    toast(`reverted: checkpoint ${done.commit.slice(0, 10)}`);
    this.loadCheckpoints();
  }

  async fork(commit) {
    const title = prompt("Title of the new session (it goes on from this checkpoint):", `fork of ${this.details.session.title}`);
    if (title === null) return;
    const forked = await api("POST", `/api/sessions/${this.id}/fork`, { at: commit, title: title || null });
    toast(`forked: session ${forked.short_id}`);
    location.hash = `#/s/${forked.id}`;
  }

  openTerminal() {
    if (this.socket) return;
    const host = this.q(".xterm-host");
    const term = new Terminal({ fontSize: 13, cursorBlink: true, convertEol: false });
    const fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(host);
    fit.fit();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/api/sessions/${this.id}/terminal?rows=${term.rows}&cols=${term.cols}`;
    const socket = new WebSocket(url, ["bw.bearer", state.token]);  // a page cannot set its headers
    socket.onmessage = (m) => term.write(m.data);
    socket.onclose = (m) => { term.write(`\r\n[closed${m.reason ? ": " + m.reason : ""}]\r\n`); this.socket = null; };
    term.onData((data) => socket.readyState === 1 && socket.send(JSON.stringify({ type: "input", data })));
    term.onResize(({ rows, cols }) => socket.readyState === 1 && socket.send(JSON.stringify({ type: "resize", rows, cols })));
    window.addEventListener("resize", () => fit.fit());
    this.socket = socket;
    this.term = term;
    this.fit = fit;
    this.q('[data-action="open-terminal"]').disabled = true;
    term.focus();
  }

  async share() {
    const link = await api("POST", `/api/sessions/${this.id}/share`);
    prompt("A read-only link to this session (30 days):", link.url);
  }

  async download(format) {
    const response = await fetch(`/api/sessions/${this.id}/export?format=${format}`, { headers: headers() });
    if (!response.ok) throw new Error(`export failed (${response.status})`);
    const url = URL.createObjectURL(await response.blob());
    const a = el("a", { href: url, download: `branchwork-${this.details.session.short_id}.${format}` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
}

function fold(summary, body, open = false) {
  return el("details", open ? { open: true } : {}, el("summary", {}, summary), body);
}

function codeBlock(text, language) {
  const code = el("code", language ? { class: `language-${language}` } : {}, text);
  if (language && window.hljs) hljs.highlightElement(code);
  return el("pre", {}, code);
}

const RENDER = {
  user_message(e, p) { this.add(el("div", { class: "msg user" }, p.text)); },
  agent_message(e, p) { this.clearLive(); this.add(el("div", { class: "msg agent" }, p.text)); },
  reasoning(e, p) { this.add(fold("reasoning", el("div", { class: "reasoning" }, p.text))); },
  tool_call(e, p) {
    const node = this.add(fold(`tool ${p.name} ${shortArgs(p.arguments)}`, codeBlock(JSON.stringify(p.arguments, null, 1), "json")));
    node.classList.add("tool");
    this.calls.set(p.call_id, node);
  },
  tool_result(e, p) {
    const call = this.calls.get(p.call_id);
    const body = el("pre", { class: p.is_error ? "error" : "" }, p.output);
    if (call) call.append(el("div", { class: "small" }, "result"), body);
    else this.add(fold(`${p.name} result`, body));
  },
  command_started(e, p) {
    const out = el("pre", { class: "output" });
    const node = this.add(fold(el("span", {}, el("code", {}, `$ ${p.command}`), el("span", { class: "status running" }, " running")), out, true));
    node.classList.add("command");
    this.commands.set(p.command_id, node);
  },
  command_output(e, p) {
    const node = this.commands.get(p.command_id);
    if (node) node.querySelector(".output").textContent += p.text;
  },
  command_finished(e, p) {
    const node = this.commands.get(p.command_id);
    if (!node) return;
    const status = node.querySelector(".status");
    status.textContent = ` ${p.status} (exit ${p.exit_code}, ${p.duration_ms} ms)`;
    status.className = `status ${p.status}`;
    const out = node.querySelector(".output");
    if (!out.textContent || p.truncated) out.textContent = p.output_head + (p.truncated ? "\n…\n" : "") + p.output_tail;
  },
  file_written(e, p) {
    const node = this.add(fold(`${p.operation} ${p.path}${p.created ? " (new)" : ""}`, codeBlock(p.diff, "diff")));
    node.classList.add("file");
  },
  checkpoint(e, p) { this.add(el("div", { class: "note" }, `checkpoint ${p.commit.slice(0, 10)}: ${p.message}`)); },
  reverted(e, p) { this.add(el("div", { class: "note" }, `reverted to ${p.to_checkpoint.slice(0, 10)}`)); },
  approval_requested(e, p) { this.approvalCard(e, p); },
  approval_decided(e, p) {
    this.pending.delete(p.request_id);
    const card = this.approvals.get(p.request_id);
    if (card) {
      card.classList.add(p.approved ? "approved" : "refused");
      card.querySelector(".answer").replaceChildren(el("b", {}, p.approved ? "approved" : `refused ${p.reason}`));
    }
  },
  turn_finished(e, p) { this.add(el("div", { class: `note turn ${p.status}` }, `turn ${p.status} · ${p.steps} step(s)${p.detail ? " · " + p.detail : ""}`)); },
  note(e, p) { this.add(el("div", { class: `note ${p.level}` }, p.text)); },
  interrupted(e, p) { this.add(el("div", { class: "note warning" }, `interrupted: ${p.reason}`)); },
  trial_started(e, p) { this.add(el("div", { class: "note" }, `trial ${p.task_number}.${p.trial_number} of task #${p.task_number}: ${p.objective.split("\n")[0]}`)); },
  trial_updated(e, p) { this.add(el("div", { class: "note" }, `trial ${p.status}${p.detail ? ": " + p.detail : ""}`)); },
  promoted(e, p) { this.add(el("div", { class: "note" }, `promoted at ${p.head.slice(0, 10)} (${p.discarded.length} other trial(s) discarded)`)); },
  forked(e, p) { this.add(el("div", { class: "note" }, el("a", { href: `#/s/${p.parent_id}` }, "forked"), ` at event #${p.parent_seq} (${p.commit.slice(0, 10)})`)); },
  check_run(e, p) {
    this.add(fold(el("span", { class: `status ${p.passed ? "ok" : "failed"}` }, `check ${p.passed ? "passed" : "failed"}: ${p.check} (${p.purpose})`), el("pre", {}, p.output_tail)));
  },
  proposal_opened(e, p) { this.add(el("div", { class: "note" }, proposalLink(this, p.number, `proposal #${p.number} opened: ${p.title}`))); },
  review(e, p) { this.add(el("div", { class: "note" }, `${p.reviewer}: ${p.verdict.replace("_", " ")}${p.message ? " — " + p.message : ""}`)); },
  comment(e, p) { this.add(el("div", { class: "note" }, `${p.reviewer} commented on ${p.path}:${p.line}: ${p.text}`)); },
  merged(e, p) { this.add(el("div", { class: "note" }, `merged into ${p.target} (${p.strategy}) as ${p.commit.slice(0, 10)}`)); },
  proposal_closed(e, p) { this.add(el("div", { class: "note" }, `proposal closed${p.reason ? ": " + p.reason : ""}`)); },
  terminal_closed(e, p) { this.add(fold(`terminal session (${p.transcript_bytes} bytes)`, el("pre", {}, p.transcript_tail))); },
};

function proposalLink(view, number, text) {
  const project = view.details.project.name;
  return state.me.session_id ? text : el("a", { href: `#/p/${encodeURIComponent(project)}/proposals/${number}` }, text);
}

function shortArgs(args) {
  const text = Object.entries(args || {}).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
  return text.length > 80 ? text.slice(0, 80) + "…" : text;
}

function summarize(e) {
  const p = e.payload;
  const text = p.text || p.summary || p.command || p.path || p.message || p.name || p.status || p.reason || p.title || "";
  return String(text).slice(0, 160);
}

start();
