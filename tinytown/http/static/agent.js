// An agent's page (/agents/{ref}): its record, inbox, recent rounds and round log, live
// from its events; its actions, the send and assign forms for a write key.
"use strict";

(() => {
  const { api, el, fill, ageCell, whenCell, short, clip } = tt;
  const ref = decodeURIComponent(location.pathname.replace(/^\/agents\//, ""));
  const ROUNDS_SHOWN = 20;
  const TEXT_FIELDS = ["description", "question", "summary", "result", "error", "payload",
    "task_id", "kind"];
  const TIMES = ["created_at", "last_heartbeat", "last_active_at", "resume_at"];
  let agent = null;
  let names = new Map();

  const path = (suffix) => `/v1/agents/${encodeURIComponent(agent ? agent.id : ref)}${suffix}`;

  function showRecord() {
    document.title = `Tinytown: ${agent.name}`;
    document.getElementById("title").textContent =
      agent.nickname ? `${agent.name} (${agent.nickname})` : agent.name;
    const state = document.getElementById("state");
    state.textContent = agent.state;
    state.className = `state state-${agent.state}`;
    const rows = [];
    for (const [name, value] of Object.entries(agent)) {
      let shown;
      if (value === null || value === undefined) shown = "-";
      else if (name === "usage") shown = tt.usageText(value);
      else if (name === "session_usage") shown = tt.sessionText(value);
      else if (name === "current_task") shown = taskLink(value, value);
      else if (typeof value === "object") shown = JSON.stringify(value);
      else shown = String(value);
      const dd = TIMES.includes(name) && value
        ? el("dd", { dataset: { field: name } }, shown, " (", whenCell("span", value), ")")
        : el("dd", { dataset: { field: name } }, shown);
      rows.push(el("dt", {}, name), dd);
    }
    document.getElementById("record").replaceChildren(...rows);
    const buttons = tt.controls(agent, refresh);
    document.getElementById("buttons").replaceChildren(...(buttons.length ? buttons
      : [el("span", { class: "muted" }, `none for a ${agent.state} agent with this key`)]));
  }

  function taskLink(id, text) {
    return el("a", { href: `/tasks/${encodeURIComponent(id)}`, title: id }, el("code", {}, text));
  }

  // what a message says, as text: a task message names its task and what it is about
  function messageText(m, tasks) {
    if (m.type === "task_assign") {
      const task = tasks.get(m.task_id);
      return `task ${short(m.task_id)}: ${task ? task.description : "(no such task)"}`;
    }
    if (m.type === "task_done") return `task ${short(m.task_id)} done: ${m.result}`;
    if (m.type === "task_failed") return `task ${short(m.task_id)} failed: ${m.error}`;
    if (m.type === "confirmation" && m.ack_type) {
      return m.ack_type.type + (m.ack_type.reason ? `: ${m.ack_type.reason}` : "");
    }
    if (m.type === "custom") return `${m.kind}: ${m.payload}`;
    const field = TEXT_FIELDS.find((f) => m[f] !== undefined && m[f] !== null);
    return field ? m[field] : "";
  }

  // the tasks the inbox's `task_assign` messages name (one read each; few wait at once)
  async function assignedTasks(messages) {
    const ids = [...new Set(messages.filter((m) => m.type === "task_assign").map((m) => m.task_id))];
    const found = await Promise.all(ids.map((id) =>
      api("GET", `/v1/tasks/${encodeURIComponent(id)}`).catch(() => null)));
    return new Map(found.filter((t) => t).map((t) => [t.id, t]));
  }

  function showInbox(messages, tasks) {
    document.getElementById("inbox-count").textContent = `(${messages.length})`;
    fill(document.querySelector("#inbox tbody"), messages.map((m) => {
      const text = messageText(m, tasks);
      return el("tr", { dataset: { message: m.id, type: m.type } },
        el("td", {}, m.type), el("td", {}, names.get(m.from) || short(m.from)),
        el("td", {}, m.priority), ageCell("td", m.created_at),
        el("td", { class: "text", title: String(text) }, clip(text, 200)));
    }), 5, "empty");
  }

  function showRounds(events) {
    const rounds = events.filter((e) => e.kind === "round").reverse().slice(0, ROUNDS_SHOWN);
    fill(document.querySelector("#rounds tbody"), rounds.map((e) => {
      const tokens = e.input_tokens === undefined ? "-"
        : `${e.input_tokens} / ${e.cached_input_tokens || 0} / ${e.output_tokens || 0}`;
      const spent = tt.roundCost(e.cost_usd);
      return el("tr", { dataset: { round: e.round } },
        el("td", { class: "num" }, e.round), el("td", {}, e.task ? taskLink(e.task, short(e.task)) : "-"),
        el("td", { class: "num" }, tokens), el("td", { class: "num" }, spent),
        ageCell("td", e.time, { class: "num" }));
    }), 5, "no rounds in the recent events");
  }

  function showLog(log) {
    const select = document.getElementById("log-round");
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "" }, "newest"),
      ...[...log.rounds].reverse().map((r) => el("option", { value: r.round }, `round ${r.round}`)));
    if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
    document.getElementById("log-caption").textContent = log.round === null
      ? "no round log on this server's machine yet"
      : `round ${log.round}${log.truncated ? ", its last 64 KiB" : ""}`;
    const shown = document.getElementById("log");
    shown.textContent = tt.visible(log.text);
    shown.hidden = !log.text;
  }

  async function fetchLog() {
    const round = document.getElementById("log-round").value;
    return api("GET", path("/logs") + (round ? `?round=${encodeURIComponent(round)}` : ""));
  }

  async function refresh() {
    agent = await api("GET", path(""));
    const [listed, inbox, events, log] = await Promise.all([
      api("GET", "/v1/agents"), api("GET", path("/inbox")),
      api("GET", `/v1/events?count=300&agent=${encodeURIComponent(agent.id)}`), fetchLog()]);
    const tasks = await assignedTasks(inbox);
    names = new Map(listed.map((a) => [a.id, a.name]));
    names.set("00000000-0000-0000-0000-000000000001", "supervisor");
    showRecord();
    showInbox(inbox, tasks);
    showRounds(events);
    showLog(log);
  }

  document.getElementById("log-round").addEventListener("change", async () => {
    try { showLog(await fetchLog()); } catch (error) { tt.failed(error); }
  });

  document.getElementById("send").addEventListener("submit", async (event) => {
    event.preventDefault();
    const type = document.getElementById("send-type").value;
    const text = document.getElementById("send-text");
    const field = { task: "description", query: "question", informational: "summary" }[type];
    const body = { type, priority: document.getElementById("send-priority").value, [field]: text.value };
    const button = document.getElementById("send-submit");
    button.disabled = true;
    try {
      const sent = await api("POST", path("/inbox"), body);
      tt.notice(`sent a ${sent.type} message to ${agent.name}`);
      text.value = "";
      await refresh();
    } catch (error) { tt.failed(error); } finally { button.disabled = false; }
  });

  document.getElementById("assign").addEventListener("submit", async (event) => {
    event.preventDefault();
    const description = document.getElementById("assign-description");
    const button = document.getElementById("assign-submit");
    button.disabled = true;
    try {
      const task = await api("POST", "/v1/tasks", { agent: agent.id, description: description.value });
      tt.notice(`assigned task ${short(task.id)} to ${agent.name}`);
      description.value = "";
      await refresh();
    } catch (error) { tt.failed(error); } finally { button.disabled = false; }
  });

  async function start() {
    await tt.session();
    try {
      agent = await api("GET", path(""));
    } catch (error) {
      tt.failed(error);
      document.getElementById("title").textContent = ref;
      return;
    }
    // the whole stream: a message sent to this agent is an event of its sender
    const id = agent.id;
    tt.live("/v1/events/stream", refresh, (e) => e.agent === id || e.to === id);
  }

  start().catch(tt.failed);
})();
