/* Branchwork's web UI, the project's work: tasks with their trials side by side, and
 * proposals with their review (diff per file, where each hunk came from, line comments),
 * approvals and the merge. Plain JavaScript on app.js's helpers (state, $, el, api, toast).
 *
 * Addresses: #/p/PROJECT/tasks, #/p/PROJECT/tasks/N, #/p/PROJECT/proposals,
 * #/p/PROJECT/proposals/N. One page of work is shown at a time, in #work-view; it is rebuilt
 * when the project's stream says one of its sessions changed (cheap: a few reads), but not
 * under the hands of someone typing in it.
 * Buttons show by role; the server checks the role again on every call.
 */
"use strict";

const RANKS = ["viewer", "member", "maintainer", "admin"];
// The page shown; the sessions it shows (redrawn when one changes); what the last action
// answered, shown once by the next drawing (a comparison just run, a refused merge).
const work = { page: null, sessions: new Set(), timer: null, compared: null, refusal: null };

function roleHere() {
  if (state.me.admin) return "admin";
  const held = [state.me.grants[state.project.id], state.me.grants["*"]].filter(Boolean);
  return held.sort((a, b) => RANKS.indexOf(b) - RANKS.indexOf(a))[0] || "viewer";
}

function may(role) { return RANKS.indexOf(roleHere()) >= RANKS.indexOf(role); }

function projectPath(rest = "") { return `/api/projects/${encodeURIComponent(state.project.id)}${rest}`; }

function money(spent) { return spent.priced ? `$${spent.cost_usd.toFixed(4)}` : "unpriced"; }

function seconds(ms) { return `${(ms / 1000).toFixed(1)} s`; }

function badge(text, kind = text) { return el("span", { class: `badge ${kind}` }, String(text).replace("_", " ")); }

function button(label, onclick, attrs = {}) {
  return el("button", { type: "button", ...attrs, onclick: () => Promise.resolve(onclick()).catch(failed) }, label);
}

/* Show the page `render` builds (an async function returning a node) in #work-view. */
async function showWork(project, page, render) {
  await selectProject(project);
  if (!state.project || (state.project.name !== project && state.project.id !== project)) return;
  for (const view of state.views.values()) view.root.hidden = true;
  if ($("#welcome")) $("#welcome").hidden = true;
  state.current = null;
  renderSessionList();
  work.page = { project, page, render };
  for (const a of document.querySelectorAll("#work-links a")) a.classList.toggle("on", a.dataset.page === page.split("/")[0]);
  await redrawWork();
}

async function redrawWork() {
  const shown = work.page;
  const box = $("#work-view");
  box.hidden = false;
  try {
    const node = await shown.render();
    if (work.page === shown) box.replaceChildren(node);
  } catch (error) {
    box.replaceChildren(el("div", { class: "empty error" }, error.message));
  }
}

function hideWork() {
  work.page = null;
  work.sessions.clear();
  $("#work-view").hidden = true;
  for (const a of document.querySelectorAll("#work-links a")) a.classList.remove("on");
}

/* Called by the project stream for each session that changed (`isNew`: one it had not
 * listed): redraw the page of work if it may show that session (at most every 700 ms). The
 * lists redraw on any change; a task page on its trials' sessions and on new sessions (a
 * trial started elsewhere). */
function workSessionChanged(sessionId, isNew) {
  if (!work.page) return;
  const list = !work.page.page.includes("/");
  const task = work.page.page.startsWith("tasks/") && isNew;
  if (!(list || task || work.sessions.has(sessionId))) return;
  clearTimeout(work.timer);
  work.timer = setTimeout(redrawSoon, 700);
}

/* Redraw, unless someone is typing in the page (a comment): then try again a bit later. */
function redrawSoon() {
  if (!work.page) return;
  const focused = document.activeElement;
  const typing = focused && $("#work-view").contains(focused) && /^(INPUT|TEXTAREA)$/.test(focused.tagName) && focused.value;
  if (typing) work.timer = setTimeout(redrawSoon, 2000);
  else redrawWork();
}

function routeWork(project, page, number) {
  if (page === "tasks" && number) return showWork(project, `tasks/${number}`, () => taskPage(number));
  if (page === "tasks") return showWork(project, "tasks", taskList);
  if (page === "proposals" && number) return showWork(project, `proposals/${number}`, () => proposalPage(number));
  if (page === "proposals") return showWork(project, "proposals", proposalList);
  return selectProject(project);
}

// -- tasks ----------------------------------------------------------------------------------

async function taskList() {
  const tasks = await api("GET", projectPath("/tasks"));
  work.sessions.clear();
  const form = el("form", { class: "new-task row" },
    el("input", { name: "title", placeholder: "A new task: the objective", required: true, maxlength: 500 }),
    el("input", { name: "check", placeholder: "check command (optional)", maxlength: 2000 }),
    el("button", { type: "submit" }, "Create task"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const made = await api("POST", projectPath("/tasks"), { title: form.title.value, check: form.check.value || null });
      location.hash = `#/p/${encodeURIComponent(state.project.name)}/tasks/${made.number}`;
    } catch (error) { failed(error); }
  });
  const rows = tasks.map((t) => el("tr", { "data-task": t.number },
    el("td", {}, `#${t.number}`),
    el("td", {}, el("a", { href: `#/p/${encodeURIComponent(state.project.name)}/tasks/${t.number}` }, t.title)),
    el("td", {}, badge(t.status)), el("td", {}, t.trials), el("td", {}, t.priority),
    el("td", {}, t.labels.join(", ")), el("td", {}, el("code", {}, t.check_command || ""))));
  return el("section", { class: "work tasks" },
    el("h1", {}, `Tasks of ${state.project.name}`),
    may("member") ? form : null,
    may("member") ? suggestionsBox() : null,
    tasks.length
      ? el("table", { class: "grid" }, el("thead", {}, el("tr", {}, ...["#", "task", "status", "trials", "priority", "labels", "check"].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
      : el("p", { class: "small" }, "No task yet."));
}

/* Suggested tasks (TODO/FIXME comments, failing task checks), each accepted in one click. */
function suggestionsBox() {
  const list = el("ul", { class: "suggestions" });
  const show = async () => {
    const found = await api("POST", projectPath("/suggestions"), {});
    list.replaceChildren(...found.suggestions.map((s) => el("li", { "data-suggestion": s.number },
      badge(s.source), " ", el("b", {}, s.title), el("span", { class: "small" }, ` ${s.evidence.slice(0, 120)}`), " ",
      button("Accept", async () => {
        const made = await api("POST", projectPath(`/suggestions/${s.number}/accept`));
        location.hash = `#/p/${encodeURIComponent(state.project.name)}/tasks/${made.task.number}`;
      }, { class: "accept" }))),
    ...found.notes.map((n) => el("li", { class: "small" }, n)));
    if (!found.suggestions.length && !found.notes.length) list.append(el("li", { class: "small" }, "Nothing to suggest."));
  };
  return el("div", { class: "suggest" }, button("Suggest tasks", show, { class: "suggest-button" }), list);
}

async function taskPage(number) {
  const base = projectPath(`/tasks/${number}`);
  const fresh = work.compared;
  work.compared = null;
  const [task, compared] = await Promise.all([api("GET", base), fresh || api("GET", `${base}/compare`)]);
  work.sessions = new Set(task.trials.map((t) => t.session_id));
  const page = el("section", { class: "work task", "data-task": number },
    el("div", { class: "work-head" }, el("h1", {}, `#${task.number} ${task.title}`), badge(task.status),
      el("span", { class: "small" }, task.priority, task.labels.length ? ` · ${task.labels.join(", ")}` : "")),
    task.description ? el("div", { class: "description" }, task.description) : null,
    el("p", {}, "Check: ", task.check_command ? el("code", {}, task.check_command) : el("span", { class: "small" }, "none (trials are compared without one)")),
    el("p", { class: "small" }, `All trials: ${task.total.tokens} tokens, ${money(task.total)}, ${seconds(task.total.turn_ms)}`),
    may("member") ? taskActions(task, base) : null,
    trialGrid(task, compared, base),
    compared.trials.length > 1 ? trialsDiff(compared, base) : null,
    taskComments(task, base));
  return page;
}

function taskActions(task, base) {
  const form = el("form", { class: "start-trials row" },
    el("label", {}, "Trials ", el("input", { name: "n", type: "number", min: 1, max: 20, value: 2, class: "narrow" })),
    el("input", { name: "models", placeholder: "models, comma-separated (optional)", class: "wide" }),
    el("input", { name: "variants", placeholder: "prompt variants, separated by | (optional)", class: "wide" }),
    el("button", { type: "submit", disabled: task.status === "done" || task.status === "closed" }, "Start trials"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const split = (text, sep) => text.split(sep).map((s) => s.trim()).filter(Boolean);
    const models = split(form.models.value, ",");
    const variants = split(form.variants.value, "|");
    const body = { models, prompt_variants: variants };
    if (!models.length && !variants.length) body.n = Number(form.n.value) || 1;
    try {
      const started = await api("POST", `${base}/trials`, body);
      toast(`started ${started.length} trial(s)`);
      redrawWork();
    } catch (error) { failed(error); }
  });
  const closed = task.status === "closed";
  return el("div", { class: "task-actions" }, form, el("div", { class: "row" },
    button("Compare (run the check)", async () => {
      toast("running the check in each trial…");
      work.compared = await api("POST", `${base}/compare`);
      redrawWork();
    },
      { class: "compare", disabled: !task.check_command || !task.trials.length }),
    button(closed ? "Reopen task" : "Close task", async () => { await api("PATCH", base, { closed: !closed }); redrawWork(); })));
}

function trialGrid(task, compared, base) {
  if (!compared.trials.length) return el("p", { class: "small" }, "No trial yet: start some above.");
  const figures = new Map(task.trials.map((t) => [t.number, t]));
  const working = compared.trials.some((t) => t.status === "queued" || t.status === "running");
  return el("div", { class: "trials" }, ...compared.trials.map((c) => trialCard(c, figures.get(c.number), task, base, working)));
}

function trialCard(c, figures, task, base, working) {
  const check = c.check
    ? el("div", { class: `check ${c.check.passed ? "passed" : "failed"}` },
      c.check.passed ? "check passed" : `check failed (exit ${c.check.exit_code})`,
      el("span", { class: "small" }, c.check.fresh ? " just now" : " earlier"),
      c.check.passed ? null : el("pre", {}, c.check.output_tail))
    : el("div", { class: "check none small" }, c.check_note || "check not run");
  const files = el("ul", { class: "files" }, ...c.files.map((f) =>
    el("li", {}, el("code", {}, f.path), el("span", { class: "small" }, f.added === null ? " binary" : ` +${f.added} −${f.removed}`))));
  const actions = el("div", { class: "row" });
  if (may("member")) {
    if (c.status === "queued" || c.status === "running") actions.append(button("Stop", () => trialAction(base, c.number, "stop"), { class: "stop" }));
    if (task.status !== "done" && task.status !== "closed") {
      actions.append(button("Retry", () => trialAction(base, c.number, "retry"), { class: "retry" }));
      actions.append(button("Promote", () => promoteTrial(base, c.number), { class: "promote", disabled: working || c.status === "discarded", title: working ? "wait until no trial works" : "make this the task's result" }));
    }
  }
  return el("article", { class: `trial ${c.status}`, "data-trial": c.number },
    el("div", { class: "trial-head" }, el("b", {}, `Trial ${c.number}`), badge(c.status)),
    c.detail ? el("div", { class: "small" }, c.detail) : null,
    el("div", { class: "small" }, `model ${c.model || "default"}`, c.prompt_variant ? ` · variant: ${c.prompt_variant}` : ""),
    el("div", {}, el("a", { href: `#/s/${c.session_id}`, class: "session-link" }, `session ${c.session_short_id}`), " ", el("code", { class: "small" }, c.branch)),
    el("div", { class: "diffstat" }, `${c.files.length} file(s), +${c.added} −${c.removed}`), files,
    check,
    el("div", { class: "figures small" }, `${c.turns} turn(s) · ${c.spent.tokens} tokens · ${money(c.spent)} · ${seconds(c.spent.turn_ms)}`),
    el("div", { class: "approach" }, c.approach || ""),
    figures && figures.spent && figures.spent.estimated ? el("div", { class: "small" }, "tokens partly estimated") : null,
    actions);
}

async function trialAction(base, number, verb) {
  const done = await api("POST", `${base}/trials/${number}/${verb}`);
  toast(verb === "stop" ? `trial ${number} stopped` : `trial ${done.number} started`);
  redrawWork();
}

async function promoteTrial(base, number) {
  if (!confirm(`Promote trial ${number}? The other trials are discarded (their histories and branches are kept).`)) return;
  const done = await api("POST", `${base}/trials/${number}/promote`);
  if (done.proposal) {
    toast(`promoted; proposal #${done.proposal.number} opened`);
    location.hash = `#/p/${encodeURIComponent(state.project.name)}/proposals/${done.proposal.number}`;
  } else {
    toast(`promoted${done.proposal_error ? "; no proposal: " + done.proposal_error : ""}`);
    redrawWork();
  }
}

function trialsDiff(compared, base) {
  const numbers = compared.trials.map((t) => t.number);
  const pick = (name, chosen) => el("select", { name }, ...numbers.map((n) => el("option", { value: n, selected: n === chosen }, `trial ${n}`)));
  const one = pick("one", numbers[0]);
  const other = pick("other", numbers[1]);
  const code = el("code", { class: "language-diff" });
  return el("div", { class: "trials-diff" }, el("h2", {}, "Between two trials"),
    el("div", { class: "row" }, one, "→", other, button("Show diff", async () => {
      const found = await api("GET", `${base}/diff?one=${one.value}&other=${other.value}`);
      code.textContent = found.diff || "(the same files)";
      delete code.dataset.highlighted;
      if (window.hljs && found.diff) hljs.highlightElement(code);
    })), el("pre", { class: "diff-view" }, code));
}

function taskComments(task, base) {
  const list = el("ul", { class: "comments" }, ...task.comments.map((c) =>
    el("li", {}, el("b", {}, c.author), el("span", { class: "small" }, ` ${c.created_at.slice(0, 16).replace("T", " ")}`), el("div", {}, c.text))));
  const form = el("form", { class: "row" }, el("input", { name: "text", placeholder: "Comment on the task", required: true, class: "wide" }), el("button", { type: "submit" }, "Comment"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try { await api("POST", `${base}/comments`, { text: form.text.value }); redrawWork(); } catch (error) { failed(error); }
  });
  return el("div", { class: "task-comments" }, el("h2", {}, "Comments"), list, may("member") ? form : null);
}

// -- proposals ------------------------------------------------------------------------------

async function proposalList() {
  const finished = !!work.showFinished;
  const [found, radar] = await Promise.all([
    api("GET", projectPath(`/proposals?finished=${finished}`)),
    api("GET", projectPath("/conflicts")).catch(() => null),
  ]);
  const toggle = el("label", { class: "small" }, el("input", { type: "checkbox", checked: finished, onchange: (e) => { work.showFinished = e.target.checked; redrawWork(); } }), " merged and closed too");
  const rows = found.map((p) => el("tr", { "data-proposal": p.number },
    el("td", {}, `#${p.number}`),
    el("td", {}, el("a", { href: `#/p/${encodeURIComponent(state.project.name)}/proposals/${p.number}` }, p.title)),
    el("td", {}, badge(p.status)), el("td", {}, el("code", {}, p.target)), el("td", {}, el("code", {}, p.head.slice(0, 10))),
    el("td", {}, p.conflicts.length ? badge(`conflicts: ${p.conflicts.join(", ")}`, "warn") : ""),
    el("td", { class: "small" }, p.updated_at.slice(0, 16).replace("T", " "))));
  return el("section", { class: "work proposals" }, el("h1", {}, `Proposals of ${state.project.name}`), toggle,
    found.length
      ? el("table", { class: "grid" }, el("thead", {}, el("tr", {}, ...["#", "proposal", "status", "into", "head", "", "updated"].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
      : el("p", { class: "small" }, "No proposal. A session's work is proposed with `branchwork propose` or by promoting a trial."),
    radar ? radarBox(radar) : null);
}

function radarBox(radar) {
  const named = new Map(radar.sessions.map((s) => [s.id, s]));
  const who = (id) => (id === "main" ? "main" : (named.get(id) || { title: id }).title || named.get(id).short_id);
  const overlaps = radar.overlaps.concat(radar.with_main);
  return el("div", { class: "radar" }, el("h2", {}, "Conflict radar"),
    overlaps.length
      ? el("ul", {}, ...overlaps.map((o) => el("li", {}, badge(o.level, o.level === "conflict" ? "warn" : ""), ` ${who(o.first)} ↔ ${who(o.second)}: `, el("code", {}, o.files.join(", ")))))
      : el("p", { class: "small" }, "No live sessions touch the same code."),
    radar.order.length ? el("p", { class: "small" }, "Suggested merge order: ", radar.order.map((s) => who(s.id)).join(" → ")) : null);
}

async function proposalPage(number) {
  const base = projectPath(`/proposals/${number}`);
  const p = await api("GET", `${base}/review`);
  work.sessions = new Set([p.session.id]);
  return el("section", { class: "work proposal", "data-proposal": number },
    el("div", { class: "work-head" }, el("h1", {}, `#${p.number} ${p.title}`), badge(p.status),
      el("span", { class: "small" }, "into ", el("code", {}, p.target), " from ", el("a", { href: `#/s/${p.session.id}` }, p.session.branch), ` · head ${p.head.slice(0, 10)}`)),
    el("div", { class: "description" }, p.description),
    gateBox(p, base),
    reviewsBox(p),
    p.checks.length ? checksBox(p.checks) : null,
    el("h2", {}, "Changes"),
    ...p.files.map((f) => fileReview(f, base, p.finished || p.status === "merged" || p.status === "closed")),
    p.files.length ? null : el("p", { class: "small" }, "No change against the target."));
}

function gateBox(p, base) {
  const open = p.status !== "merged" && p.status !== "closed";
  const reasons = p.gate.reasons;
  const box = el("div", { class: "gate" });
  const policy = p.policy;
  box.append(el("div", { class: "small" },
    `Policy: ${policy.required_approvals} approval(s) on the current head`,
    policy.required_checks.length ? `, checks: ${policy.required_checks.join(", ")}` : ", no required check",
    `, ${policy.merge_strategy}. Approvals: ${p.gate.approvals}/${p.gate.required_approvals}`,
    p.gate.stale_approvals ? ` (${p.gate.stale_approvals} on an older head)` : "",
    p.gate.open_comments ? ` · ${p.gate.open_comments} open comment(s)` : ""));
  if (!open) {
    box.append(el("div", { class: "merged" }, p.status === "merged" ? `Merged as ${(p.merged_commit || "").slice(0, 10)}.` : "Closed."));
    return box;
  }
  box.append(reasons.length
    ? el("ul", { class: "reasons" }, ...reasons.map((r) => el("li", {}, r)))
    : el("div", { class: "ready" }, "Ready to merge (the required checks run on the merge result)."));
  const refusal = el("div", { class: "refusal", hidden: !work.refusal }, work.refusal || "");
  work.refusal = null;
  const act = async (run) => {
    try { await run(); } catch (error) { work.refusal = error.message; }
    redrawWork();
  };
  const row = el("div", { class: "row actions" });
  if (may("maintainer")) {
    const strategy = el("select", { name: "strategy" }, ...["merge", "squash", "rebase"].map((s) => el("option", { value: s, selected: s === policy.merge_strategy }, s)));
    row.append(
      button("Approve", () => act(() => api("POST", `${base}/approve`, { message: "" })), { class: "approve" }),
      button("Request changes", () => {
        const message = prompt("What should change?");
        if (message) return act(() => api("POST", `${base}/request-changes`, { message }));
      }, { class: "request-changes" }),
      strategy,
      el("button", { type: "button", class: "merge", disabled: reasons.length > 0, title: reasons.join("; ") || "merge into " + p.target,
        onclick: () => act(async () => {
          const done = await api("POST", `${base}/merge`, { strategy: strategy.value });
          toast(`merged into ${done.target} as ${done.commit.slice(0, 10)}`);
        }) }, "Merge"),
      button("Close", () => { if (confirm("Close this proposal without merging?")) return act(() => api("POST", `${base}/close`, { reason: "closed in the web UI" })); }, { class: "close" }));
  }
  if (may("member")) {
    row.append(
      button("Run checks", () => act(() => api("POST", `${base}/checks`)), { disabled: !policy.required_checks.length }),
      button("Agent: address comments", () => act(async () => {
        await api("POST", `${base}/address`, {});
        toast("the agent is working on the review in the session");
      }), { disabled: !p.gate.open_comments && !p.gate.requesting_changes.length }));
  } else {
    row.append(el("span", { class: "small" }, "You may read this proposal (viewer)."));
  }
  box.append(row, refusal);
  return box;
}

function reviewsBox(p) {
  if (!p.reviews.length) return el("p", { class: "small" }, "No review yet.");
  return el("ul", { class: "reviews" }, ...p.reviews.map((r) => el("li", {},
    badge(r.verdict === "approved" ? "approved" : r.verdict, r.verdict === "approved" ? "done" : "warn"), " ", el("b", {}, r.reviewer),
    el("span", { class: "small" }, ` on ${r.head.slice(0, 10)}${r.head === p.head ? "" : " (an older head)"}`), r.message ? `: ${r.message}` : "")));
}

function checksBox(checks) {
  return el("div", { class: "checks" }, el("h2", {}, "Checks"), ...checks.map((c) => fold(
    el("span", { class: `status ${c.passed ? "ok" : "failed"}` }, `${c.passed ? "passed" : "failed"} `, el("code", {}, c.check), ` (${c.purpose}, ${c.duration_ms} ms)`),
    el("pre", {}, c.output_tail || "(no output)"))));
}

/* One file of the review: each hunk with where it came from, its lines numbered as the head
 * has them, comments under their line, and (for members) a way to comment on a line. */
function fileReview(file, base, closed) {
  const comments = new Map();
  for (const c of file.comments) {
    const at = c.outdated ? 0 : c.current_line;
    if (!comments.has(at)) comments.set(at, []);
    comments.get(at).push(c);
  }
  const hunks = file.hunks.map((h) => el("div", { class: "hunk" },
    el("div", { class: "origins small" }, ...h.origins.map((o) => el("div", { class: "origin" },
      el("b", {}, o.source), ` ${o.what}`, o.prompt ? el("span", {}, ` — “${o.prompt.slice(0, 140)}”`) : null,
      o.tool_calls.length ? el("span", {}, ` · ${o.tool_calls.join(", ")}`) : null))),
    hunkTable(h, file.path, comments, base, closed)));
  const outdated = comments.get(0) || [];
  return el("div", { class: "file-review", "data-path": file.path },
    el("h3", {}, el("code", {}, file.path)), ...hunks,
    outdated.length ? el("div", { class: "outdated" }, el("div", { class: "small" }, "Outdated comments"), ...outdated.map(commentNode)) : null);
}

function hunkTable(hunk, path, comments, base, closed) {
  const table = el("table", { class: "hunk-lines" }, el("tr", { class: "hunk-header" }, el("td", {}), el("td", {}, el("code", {}, `@@ +${hunk.new_start},${hunk.new_count} @@`))));
  let line = hunk.new_start;
  for (const text of hunk.text.split("\n")) {
    const kind = text[0] === "+" ? "add" : text[0] === "-" ? "del" : "ctx";
    const number = kind === "del" ? null : line;
    if (kind !== "del") line += 1;
    const cell = el("td", { class: "n" }, number === null ? "" : String(number));
    if (number !== null && !closed && may("member")) {
      cell.append(el("button", { type: "button", class: "add-comment", title: `comment on line ${number}`, onclick: (e) => openCommentForm(e.target.closest("tr"), path, number, base) }, "+"));
    }
    table.append(el("tr", { class: kind, "data-line": number === null ? "" : number }, cell, el("td", {}, el("code", {}, text))));
    for (const c of (number !== null && comments.get(number)) || []) {
      table.append(el("tr", { class: "comment-row" }, el("td", {}), el("td", {}, commentNode(c))));
    }
    if (number !== null) comments.delete(number);
  }
  return table;
}

function commentNode(c) {
  return el("div", { class: `comment${c.outdated ? " outdated" : ""}` }, el("b", {}, c.reviewer), el("span", { class: "small" }, ` line ${c.line}`), el("div", {}, c.text));
}

function openCommentForm(row, path, line, base) {
  if (row.nextElementSibling && row.nextElementSibling.classList.contains("comment-form")) return;
  const input = el("textarea", { name: "text", rows: 2, placeholder: `Comment on ${path}:${line}` });
  const form = el("form", {}, input, el("div", { class: "row" }, el("button", { type: "submit" }, "Comment"),
    button("Cancel", () => formRow.remove())));
  const formRow = el("tr", { class: "comment-form" }, el("td", {}), el("td", {}, form));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", `${base}/comments`, { path, line, text: input.value });
      redrawWork();
    } catch (error) { failed(error); }
  });
  row.after(formRow);
  input.focus();
}
