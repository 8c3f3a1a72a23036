// A task's page (/tasks/{ref}): its text, its question to a person (with a reply form
// while it waits), its result or error, who works on it, its usage, branch and
// commits, its mission, gates and dependencies (and the tasks that wait for it), what
// it waits for a person for, and the rounds it took (from the recent events), live.
"use strict";

(() => {
  const { api, el, fill, ageCell, whenCell, short } = tt;
  const ref = decodeURIComponent(location.pathname.replace(/^\/tasks\//, ""));
  const TIMES = ["created_at", "updated_at", "started_at", "completed_at"];
  let task = null;
  let linked = new Set();  // its dependencies' and dependents' ids: their events matter
  let waitingShown = null;  // the state the answer box was made for (kept while the same)

  // an agent by name, linked; one no longer recorded (pruned) by the name an event
  // kept, else its id's start
  function agentLink(id, names, known) {
    const name = names.get(id);
    return name ? el("a", { href: `/agents/${encodeURIComponent(name)}` }, name)
      : el("span", { title: id }, known ? `${known} (pruned)` : `pruned agent ${short(id)}`);
  }

  function showTask(names) {
    document.title = `Tinytown: task ${short(task.id)}`;
    document.getElementById("title").textContent = short(task.id);
    const state = document.getElementById("state");
    state.textContent = task.state;
    state.className = `state state-${task.state}`;
    document.getElementById("description").textContent = task.description;
    const failed = task.state === "failed";
    document.getElementById("outcome-title").textContent = failed ? "Error" : "Result";
    const outcome = document.getElementById("outcome");
    outcome.textContent = task.result || (task.state === "completed" || failed ? "(none given)"
      : `none yet: the task is ${task.state}`);
    outcome.className = "text" + (failed ? " error" : "");
    const rows = [];
    const shown = {
      id: el("code", {}, task.id),
      assigned_to: task.assigned_to ? agentLink(task.assigned_to, names) : "-",
      usage: tt.usageText(task.usage),
      branch: task.branch ? el("code", {}, task.branch) : "-",
      commits: task.commits && task.commits.length
        ? el("span", {}, ...task.commits.map((c, i) => [i ? ", " : "", el("code", { title: c }, c.slice(0, 12))]).flat())
        : "-",
      parent_id: task.parent_id ? el("a", { href: `/tasks/${encodeURIComponent(task.parent_id)}` },
        el("code", {}, short(task.parent_id))) : "-",
      tags: (task.tags || []).join(", ") || "-",
    };
    for (const name of ["id", "assigned_to", ...TIMES, "usage", "branch", "commits", "parent_id", "tags"]) {
      const value = task[name];
      let dd;
      if (TIMES.includes(name)) {
        dd = value ? el("dd", { dataset: { field: name } }, value, " (", whenCell("span", value), ")")
          : el("dd", { dataset: { field: name } }, "-");
      } else {
        dd = el("dd", { dataset: { field: name } }, shown[name]);
      }
      rows.push(el("dt", {}, name === "assigned_to" ? "agent" : name), dd);
    }
    document.getElementById("record").replaceChildren(...rows);
  }

  function taskRow(t, names) {
    return el("tr", { dataset: { task: t.id, state: t.state } },
      el("td", {}, el("a", { href: `/tasks/${encodeURIComponent(t.id)}` }, el("code", { title: t.id }, short(t.id)))),
      el("td", { class: "description", title: t.description }, tt.clip(t.description, 100)),
      tt.stateBadge(t.state, "td"),
      el("td", {}, t.assigned_to ? agentLink(t.assigned_to, names) : (t.role ? `role ${t.role}` : "-")));
  }

  // the gates of the task's `gates` (a plan's check, review, approve), one line each
  function gates(g) {
    if (!g) return ["none"];
    const lines = [];
    if (g.check) {
      lines.push(el("div", { dataset: { gate: "check" } }, "check ", el("code", {}, g.check),
        ` (up to ${g.max_fix_rounds ?? 3} fix rounds)`));
    }
    if (g.review) {
      lines.push(el("div", { dataset: { gate: "review" } },
        `review by role ${g.review} (up to ${g.max_review_rounds ?? 3} rounds)`));
    }
    if (g.approve) lines.push(el("div", { dataset: { gate: "approve" } }, "a person approves"));
    return lines.length ? lines : ["none"];
  }

  function showLinks(links, names) {
    const mission = task.mission ? el("a", { href: `/missions/${encodeURIComponent(task.mission)}` }, task.mission) : "-";
    const rows = [["mission", mission], ["gates", gates(task.gates)],
      ["blocked_reason", task.blocked_reason || "-"]];
    if (links.missing.length) rows.push(["missing", links.missing.map(short).join(", ") + " (no longer recorded)"]);
    document.getElementById("links").replaceChildren(...rows.flatMap(([key, value]) =>
      [el("dt", {}, key), el("dd", { dataset: { field: key } }, ...[value].flat())]));
    fill(document.querySelector("#dependencies tbody"), links.dependencies.map((t) => taskRow(t, names)),
      4, "none: it waits for no task");
    fill(document.querySelector("#dependents tbody"), links.dependents.map((t) => taskRow(t, names)),
      4, "none: no task waits for it");
    linked = new Set([...task.after || [], ...links.dependents.map((t) => t.id)]);
  }

  // approval by a person (a question to a person has its own section and reply form)
  function showWaiting() {
    const waiting = task.state === "awaiting_approval";
    if (task.state === waitingShown) return;
    waitingShown = task.state;
    document.getElementById("waiting-section").hidden = !waiting;
    document.getElementById("waiting-for").textContent = "approve its work to complete it, or reject it";
    document.getElementById("task-actions").replaceChildren(
      ...(waiting ? ttActions.forTask(task, `task ${short(task.id)}`, refresh) : []));
  }

  // the question its agent asked a person (the open one, else the last), its answer,
  // and, while it waits, the reply form (for a key that may write)
  function showQuestion() {
    const history = task.questions || [];
    const last = history.length ? history[history.length - 1] : null;
    const open = task.state === "awaiting_input";
    document.getElementById("question-section").hidden = !open && !last;
    document.getElementById("question-title").textContent = open
      ? "Question to a person (awaiting the answer)" : "Question to a person";
    document.getElementById("question").textContent = task.question || (last ? last.question : "");
    const answer = document.getElementById("answer");
    answer.hidden = open || !(last && last.answer);
    answer.textContent = last && last.answer ? `answered: ${task.answer || last.answer}` : "";
    document.getElementById("reply").hidden = !(open && tt.canWrite());
  }

  document.getElementById("reply").addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = document.getElementById("reply-answer");
    const button = document.getElementById("reply-submit");
    button.disabled = true;
    try {
      const done = await api("POST", `/v1/tasks/${encodeURIComponent(task.id)}/reply`, { answer: answer.value });
      tt.notice(`answered: the task is ${done.state} again`);
      answer.value = "";
      await refresh();
    } catch (error) { tt.failed(error); } finally { button.disabled = false; }
  });

  function showRounds(events, names) {
    const rounds = events.filter((e) => e.kind === "round" && e.task === task.id);
    fill(document.querySelector("#rounds tbody"), rounds.map((e) => {
      const tokens = e.input_tokens === undefined || e.input_tokens === null ? "-"
        : `${e.input_tokens} / ${e.cached_input_tokens || 0} / ${e.output_tokens || 0}`;
      return el("tr", { dataset: { round: e.round } },
        el("td", { class: "num" }, e.round),
        el("td", {}, e.agent ? agentLink(e.agent, names, e.name) : (e.name || "-")),
        el("td", { class: "num" }, tokens), el("td", { class: "num cost" }, tt.roundCost(e.cost_usd)),
        ageCell("td", e.time, { class: "num" }));
    }), 5, "no rounds in the recent events");
  }

  async function refresh() {
    task = await api("GET", `/v1/tasks/${encodeURIComponent(task ? task.id : ref)}`);
    const agentFilter = task.assigned_to ? `&agent=${encodeURIComponent(task.assigned_to)}` : "";
    const [listed, events, links] = await Promise.all([api("GET", "/v1/agents"),
      task.assigned_to ? api("GET", `/v1/events?count=2000${agentFilter}`).catch(() => [])
        : Promise.resolve([]),
      api("GET", `/v1/tasks/${encodeURIComponent(task.id)}/links`)]);
    const names = new Map(listed.map((a) => [a.id, a.name]));
    showTask(names);
    showLinks(links, names);
    showWaiting();
    showQuestion();
    showRounds(events, names);
  }

  async function start() {
    await tt.session();
    try {
      task = await api("GET", `/v1/tasks/${encodeURIComponent(ref)}`);
    } catch (error) {
      tt.failed(error);
      document.getElementById("title").textContent = ref;
      return;
    }
    const id = task.id;
    tt.live("/v1/events/stream", refresh,
      (e) => e.task === id || linked.has(e.task) || e.agent === task.assigned_to);
  }

  start().catch(tt.failed);
})();
