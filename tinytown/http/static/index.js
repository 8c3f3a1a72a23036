// The town's page: its agents (live from the event stream), the open questions to a
// person (each with a reply form), the assign form, its missions (each one's
// progress and cost, linked to its page) and the recent tasks.
"use strict";

(() => {
  const { api, el, fill, ageCell, cost, short, clip, stateBadge } = tt;
  const TASKS_SHOWN = 50;
  const STALE_SECS = 60;
  let agents = [];
  let tasks = [];
  let missions = [];

  function agentRows(inboxes) {
    const byTask = new Map(tasks.map((t) => [t.id, t]));
    return agents.map((a) => {
      const task = a.current_task ? byTask.get(a.current_task) : null;
      const current = a.current_task
        ? el("span", { title: task ? task.description : a.current_task },
          el("code", {}, short(a.current_task)), task ? " " + clip(task.description, 60) : "")
        : "-";
      const live = !["stopped", "cold", "error"].includes(a.state);
      const stale = live && (Date.now() - tt.parseTime(a.last_heartbeat)) / 1000 > STALE_SECS;
      return el("tr", { dataset: { agent: a.name, id: a.id, state: a.state } },
        el("td", { class: "name" }, el("a", { href: `/agents/${encodeURIComponent(a.name)}` }, a.name)),
        el("td", { class: "nickname" }, a.nickname || "-"),
        el("td", { class: "role" }, a.role_id || "-"),
        stateBadge(a.state, "td"),
        el("td", { class: "task" }, current),
        el("td", { class: "num inbox" }, inboxes[a.id] ?? 0),
        ageCell("td", a.last_heartbeat, { class: "num heartbeat" + (stale ? " stale" : "") }),
        el("td", { class: "num cost" }, cost(a.usage)),
        tt.canWrite() ? el("td", { class: "actions" }, ...tt.controls(a, refresh)) : null);
    });
  }

  function taskRows() {
    const names = new Map(agents.map((a) => [a.id, a.name]));
    const recent = [...tasks].sort((x, y) => String(y.updated_at).localeCompare(String(x.updated_at)))
      .slice(0, TASKS_SHOWN);
    document.getElementById("tasks-count").textContent =
      tasks.length > TASKS_SHOWN ? `(newest ${TASKS_SHOWN} of ${tasks.length})` : `(${tasks.length})`;
    return recent.map((t) => el("tr", { dataset: { task: t.id, state: t.state } },
      el("td", {}, el("a", { href: `/tasks/${encodeURIComponent(t.id)}` },
        el("code", { title: t.id }, short(t.id)))),
      el("td", { class: "description", title: t.description }, clip(t.description, 120)),
      stateBadge(t.state, "td"),
      el("td", { class: "outcome" + (t.state === "failed" ? " error" : ""), title: t.result || "" },
        t.result ? (t.state === "failed" ? "error: " : "") + clip(t.result, 160) : "-"),
      el("td", {}, t.assigned_to ? (names.get(t.assigned_to) || short(t.assigned_to)) : "-"),
      ageCell("td", t.updated_at, { class: "num" })));
  }

  function missionRows() {
    return missions.map((m) => {
      const counts = m.task_states || {};
      const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
      const budget = m.budget_usd ? ` of ${tt.money(m.budget_usd)}` : "";
      return el("tr", { dataset: { mission: m.name, state: m.state } },
        el("td", { class: "name" }, el("a", { href: `/missions/${encodeURIComponent(m.name)}` }, m.name)),
        stateBadge(m.state, "td"),
        el("td", { class: "num progress" }, `${counts.completed || 0}/${total} done`),
        el("td", { class: "num cost" }, tt.money(m.spent_usd || 0) + budget),
        el("td", { class: "goal", title: m.goal }, clip(m.goal, 100) || "-"),
        ageCell("td", m.updated_at, { class: "num" }));
    });
  }

  // the open questions, each with a reply form; drawn again only when they change, so
  // an answer being typed is not wiped by a refresh
  let questionsShown = null;

  function showQuestions(questions) {
    const seen = JSON.stringify(questions.map((q) => [q.task, q.asked_at]));
    document.getElementById("questions-count").textContent = `(${questions.length})`;
    if (seen === questionsShown) return;
    questionsShown = seen;
    fill(document.querySelector("#questions tbody"), questions.map((q) => el("tr", { dataset: { task: q.task } },
      el("td", {}, el("a", { href: `/tasks/${encodeURIComponent(q.task)}` }, el("code", { title: q.task }, short(q.task)))),
      el("td", {}, q.agent_name),
      ageCell("td", q.asked_at, { class: "num" }),
      el("td", { class: "question", title: q.description }, q.question),
      tt.canWrite() ? el("td", {}, replyForm(q)) : null)), 5, "no open questions");
  }

  function replyForm(q) {
    const answer = el("textarea", { class: "answer", required: "", "aria-label": `answer to ${short(q.task)}` });
    const button = el("button", { type: "submit" }, "Reply");
    const form = el("form", { class: "inline reply" }, answer, button);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      try {
        const task = await api("POST", `/v1/tasks/${encodeURIComponent(q.task)}/reply`, { answer: answer.value });
        tt.notice(`answered task ${short(task.id)}: it is ${task.state} again`);
        questionsShown = null;
        tasksChanged = true;
        await refresh();
      } catch (error) { tt.failed(error); button.disabled = false; }
    });
    return form;
  }

  function agentChoices() {
    const select = document.getElementById("assign-agent");
    const chosen = select.value;
    select.replaceChildren(...agents.filter((a) => !["stopped", "error"].includes(a.state))
      .map((a) => el("option", { value: a.id }, a.name)));
    if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  }

  // the task list is read again after an event about tasks, or half a minute on
  let tasksRead = 0;
  let tasksChanged = true;
  const TASK_EVENT = /^(task_|mission_|assigned$|queued$|backlog_|reclaimed$|recovered$|api$|blocked$|released$|retried$|unblocked$|question|answered$)/;

  async function refresh() {
    const readTasks = tasksChanged || Date.now() - tasksRead > 30000;
    tasksChanged = false;  // an event from now on marks them again
    let listed, inboxes, allTasks, allMissions, questions;
    try {
      [listed, inboxes, allTasks, allMissions, questions] = await Promise.all([
        api("GET", "/v1/agents"), api("GET", "/v1/inboxes"),
        readTasks ? api("GET", "/v1/tasks") : Promise.resolve(tasks),
        readTasks ? api("GET", "/v1/missions") : Promise.resolve(missions),
        api("GET", "/v1/questions")]);
    } catch (error) {
      tasksChanged = tasksChanged || readTasks;
      throw error;
    }
    if (readTasks) tasksRead = Date.now();
    agents = listed;
    tasks = allTasks;
    missions = allMissions;
    fill(document.querySelector("#agents tbody"), agentRows(inboxes), 9, "no agents yet: tt spawn NAME");
    fill(document.querySelector("#tasks tbody"), taskRows(), 6, "no tasks yet");
    document.getElementById("missions-section").hidden = !missions.length;
    fill(document.querySelector("#missions tbody"), missionRows(), 6, "no missions");
    showQuestions(questions);
    if (tt.canWrite()) agentChoices();
  }

  document.getElementById("assign").addEventListener("submit", async (event) => {
    event.preventDefault();
    const role = document.getElementById("assign-role").value.trim();
    const description = document.getElementById("assign-description");
    const body = { description: description.value };
    if (role) body.role = role; else body.agent = document.getElementById("assign-agent").value;
    const button = document.getElementById("assign-submit");
    button.disabled = true;
    try {
      const task = await api("POST", "/v1/tasks", body);
      tt.notice(`assigned task ${short(task.id)} (${task.state})`);
      description.value = "";
      tasksChanged = true;
      await refresh();
    } catch (error) { tt.failed(error); } finally { button.disabled = false; }
  });

  tt.session().then(() => tt.live("/v1/events/stream", refresh, (event) => {
    if (TASK_EVENT.test(event.kind)) tasksChanged = true;
    return true;
  }), tt.failed);
})();
