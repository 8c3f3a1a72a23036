// A mission's page (/missions/{name}): its goal, state, budget and parallelism, its
// graph drawn by waves (graph.js), its tasks, and the answers a person owes it
// (actions.js), kept current from the event stream: an event about the mission or one
// of its tasks reads it again, without a reload.
"use strict";

(() => {
  const { api, el, fill, whenCell } = tt;
  const name = decodeURIComponent(location.pathname.replace(/^\/missions\//, ""));
  const WAITING = ["awaiting_approval", "awaiting_input"];
  let ids = new Set();  // the mission's task ids: whose events concern the page
  let waitingShown = null;  // what the waiting table shows (kept while it is the same,
  let actionsShown = null;  // so a half-typed answer or note survives a refresh)

  function money(usd) { return usd === null || usd === undefined ? "-" : tt.money(Number(usd)); }

  function showMission(m, rows) {
    document.title = `Tinytown: mission ${m.name}`;
    document.getElementById("title").textContent = m.name;
    const state = document.getElementById("state");
    state.textContent = m.state;
    state.className = `state state-${m.state}`;
    document.getElementById("goal").textContent = m.goal || "(no goal given)";
    const done = rows.filter((r) => r.state === "completed").length;
    const progress = `${done}/${rows.length} done`;
    document.getElementById("progress").textContent = `(${progress})`;
    const shown = [
      ["state", m.state + (m.reason ? ` (${m.reason})` : "")],
      ["progress", progress],
      ["cost", money(m.spent_usd) + (m.budget_usd ? ` of ${money(m.budget_usd)} budget` : " (no budget)")],
      ["parallel", m.parallel ? `at most ${m.parallel} tasks at once` : "no limit"],
      ["created_at", m.created_at ? el("span", {}, m.created_at, " (", whenCell("span", m.created_at), ")") : "-"],
      ["finished_at", m.finished_at ? el("span", {}, m.finished_at, " (", whenCell("span", m.finished_at), ")") : "-"],
    ];
    document.getElementById("record").replaceChildren(...shown.flatMap(([key, value]) =>
      [el("dt", {}, key), el("dd", { dataset: { field: key } }, value)]));
    const key = `${m.state}`;
    if (key !== actionsShown) {
      actionsShown = key;
      document.getElementById("mission-actions").replaceChildren(...ttActions.forMission(m, refresh));
    }
  }

  function showTasks(waves) {
    const rows = waves.flatMap((wave, i) => wave.map((r) => el("tr", { dataset: { task: r.name, state: r.state } },
      el("td", { class: "num" }, i + 1),
      el("td", {}, el("a", { href: `/tasks/${encodeURIComponent(r.id)}` }, r.name)),
      tt.stateBadge(r.state, "td"),
      el("td", {}, r.agent || (r.role ? `role ${r.role}` : "-")),
      el("td", {}, (r.after || []).join(", ") || "-"),
      el("td", { class: "num cost" }, money(r.cost_usd)),
      el("td", {}, r.branch ? el("code", {}, r.branch) : "-"),
      el("td", { class: "reason" }, r.blocked_reason || "-"))));
    fill(document.querySelector("#tasks tbody"), rows, 8, "no tasks yet");
  }

  async function showWaiting(rows) {
    const waiting = rows.filter((r) => WAITING.includes(r.state));
    const asked = waiting.some((r) => r.state === "awaiting_input") ? await ttActions.questions() : [];
    const questions = new Map(waiting.map((r) => [r.id, ttActions.questionOf(r, asked)]));
    const key = JSON.stringify(waiting.map((r) => [r.id, r.state, questions.get(r.id)]));
    if (key === waitingShown) return;
    waitingShown = key;
    document.getElementById("waiting-section").hidden = !waiting.length;
    fill(document.querySelector("#waiting tbody"), waiting.map((r) => el("tr", { dataset: { task: r.name, state: r.state } },
      el("td", {}, el("a", { href: `/tasks/${encodeURIComponent(r.id)}` }, r.name)),
      tt.stateBadge(r.state, "td"),
      el("td", {}, r.agent || "-"),
      el("td", { class: "question" }, r.state === "awaiting_input" ? questions.get(r.id) || "-"
        : "approve its work to complete it, or reject it"),
      tt.canWrite() ? el("td", { class: "actions" }, ...ttActions.forTask(r, `task ${r.name}`, refresh)) : null)),
    tt.canWrite() ? 5 : 4, "nothing waits");
  }

  async function refresh() {
    const m = await api("GET", `/v1/missions/${encodeURIComponent(name)}`);
    const rows = m.waves.flat();
    ids = new Set(rows.map((r) => r.id));
    showMission(m, rows);
    document.getElementById("graph").replaceChildren(rows.length ? ttGraph.draw(m.waves)
      : el("p", { class: "muted" }, "no tasks yet"));
    showTasks(m.waves);
    await showWaiting(rows);
  }

  async function start() {
    await tt.session();
    try {
      await refresh();
    } catch (error) {
      tt.failed(error);
      document.getElementById("title").textContent = name;
      return;
    }
    tt.live("/v1/events/stream", refresh, (e) => e.mission === name || ids.has(e.task));
  }

  start().catch(tt.failed);
})();
