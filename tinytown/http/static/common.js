// What every page of the dashboard shares: calls to the /v1 API (with the session
// cookie, and the header that marks them as the page's own), the key's scope, the live
// event stream, and small formatting helpers. Text from the town is only ever set as
// text (textContent), never as HTML.
"use strict";

const tt = (() => {
  const OWN = { "X-Requested-With": "tinytown-dashboard" };
  // the kinds of the town's events (an SSE event of another kind is a "message")
  const KINDS = ["state", "spawned", "assigned", "queued", "backlog_added", "sent", "round",
    "task_pending", "task_assigned", "task_running", "task_completed", "task_failed",
    "task_cancelled", "recovered", "reclaimed", "restarted", "crash_loop", "moved", "api",
    "message",
    // the task graph and missions (a state's event is task_<state> or mission_<state>,
    // the gates' states included)
    "blocked", "released", "retried", "unblocked", "task_blocked", "task_awaiting_approval",
    "task_awaiting_input", "task_in_review", "approved", "rejected", "asked", "replied",
    "mission_started", "mission_released", "mission_task_added", "mission_planning",
    "mission_running", "mission_blocked", "mission_done", "mission_failed",
    "mission_cancelled", "mission_awaiting_approval", "mission_approved", "mission_rejected",
    // questions to a person
    "question", "answered", "question_timeout"];
  let who = null;

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function toLogin() {
    location.replace("/login?next=" + encodeURIComponent(location.pathname));
  }

  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", cache: "no-store",
      headers: { ...OWN, Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      toLogin();
      throw new ApiError(401, "the session ended: log in again");
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!response.ok) {
      throw new ApiError(response.status,
        (data && data.error) || `${response.status} ${response.statusText}`);
    }
    return data;
  }

  // an element: el("td", {class: "num", dataset: {agent: "a"}}, "text", child, ...)
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "dataset") Object.assign(node.dataset, value);
      else if (name === "class") node.className = value;
      else if (name === "onclick") node.addEventListener("click", value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function fill(tbody, rows, columns, empty) {
    tbody.replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { class: "empty", colspan: columns }, empty))]));
  }

  function notice(text, bad) {
    const node = document.getElementById("notice");
    if (!node) return;
    node.textContent = text;
    node.className = bad ? "bad" : "";
    node.hidden = !text;
  }

  function failed(error) {
    if (!(error instanceof ApiError && error.status === 401)) notice(String(error.message || error), true);
  }

  // RFC 3339 with microseconds: Date.parse wants milliseconds at most
  function parseTime(text) {
    if (!text) return NaN;
    return Date.parse(String(text).replace(/(\.\d{3})\d+/, "$1"));
  }

  function age(text) {
    const then = parseTime(text);
    if (Number.isNaN(then)) return "-";
    return span(Math.max(0, Math.round((Date.now() - then) / 1000)));
  }

  function span(secs) {
    if (secs < 60) return `${secs}s`;
    if (secs < 3600) return `${Math.floor(secs / 60)}m ${secs % 60}s`;
    if (secs < 86400) return `${Math.floor(secs / 3600)}h ${Math.floor(secs % 3600 / 60)}m`;
    return `${Math.floor(secs / 86400)}d`;
  }

  // an element whose text is the age of `time`, kept current by tick()
  function ageCell(tag, time, attrs) {
    return el(tag, { ...(attrs || {}), class: ((attrs && attrs.class) || "") + " age",
      dataset: { time: time || "" }, title: time || "" }, age(time));
  }

  // "5m ago", or "in 5m" for a time still to come (a usage limit's resume_at)
  function relative(text) {
    const then = parseTime(text);
    if (Number.isNaN(then)) return "-";
    const secs = Math.round((then - Date.now()) / 1000);
    return secs > 0 ? `in ${span(secs)}` : `${span(-secs)} ago`;
  }

  // an element whose text is `relative(time)`, kept current by tick()
  function whenCell(tag, time, attrs) {
    return el(tag, { ...(attrs || {}), class: ((attrs && attrs.class) || "") + " when",
      dataset: { time: time || "" }, title: time || "" }, relative(time));
  }

  function tick() {
    for (const node of document.querySelectorAll(".age")) node.textContent = age(node.dataset.time);
    for (const node of document.querySelectorAll(".when")) node.textContent = relative(node.dataset.time);
  }

  // like `tt usage`: $0.0123, with +? when some rounds' cost is not known; "unknown"
  // (the one word for a cost nobody reported or priced) when none is
  function cost(usage) {
    if (!usage || !usage.rounds) return "-";
    const unknown = (usage.unknown_rounds || 0) + (usage.uncosted_rounds || 0);
    if (unknown >= usage.rounds) return "unknown";
    const text = money(usage.cost_usd || 0);
    return unknown ? text + "+?" : text;
  }

  // a round's cost as the API gives it (null: unknown)
  function roundCost(usd) {
    return usd === null || usd === undefined || usd === "" || usd === "unknown"
      ? "unknown" : money(Number(usd));
  }

  // $0.0012, and 2 significant digits of a smaller amount ($0.000012), as `tt` does
  function money(usd) {
    let digits = 4;
    if (usd > 0 && usd < 0.001) digits = Math.min(12, 1 - Math.floor(Math.log10(usd)));
    return "$" + usd.toFixed(digits);
  }

  // tokens and cost of some rounds, as a sentence: "$0.0024 for 2 rounds: 24 input,
  // 6 cached, 10 output tokens" (a usage document of the API, not its JSON)
  function usageText(usage) {
    if (!usage || !usage.rounds) return "-";
    const tokens = `${usage.input_tokens || 0} input, ${usage.cached_input_tokens || 0} cached,`
      + ` ${usage.output_tokens || 0} output tokens`;
    const rounds = `${usage.rounds} round${usage.rounds === 1 ? "" : "s"}`;
    if ((usage.unknown_rounds || 0) >= usage.rounds) {
      return `unknown (${rounds}: its CLI reported no usage)`;
    }
    const unknown = usage.unknown_rounds
      ? `; ${usage.unknown_rounds} reported no usage` : "";
    return `${cost(usage)} for ${rounds}: ${tokens}${unknown}`;
  }

  // what a CLI reported for its session (`session_usage`): tokens, and a cost if it says
  function sessionText(usage) {
    if (!usage) return "-";
    const tokens = `${usage.input_tokens || 0} input, ${usage.cached_input_tokens || 0} cached,`
      + ` ${usage.output_tokens || 0} output tokens`;
    return typeof usage.cost_usd === "number" ? `${money(usage.cost_usd)}: ${tokens}` : tokens;
  }

  function short(id) { return id ? String(id).slice(0, 8) : "-"; }

  function clip(text, length) {
    text = String(text || "");
    return text.length > length ? text.slice(0, length - 1) + "\u2026" : text;
  }

  // control characters (terminal escapes in a log) shown as \xNN, as `tt logs` does
  function visible(text) {
    return String(text || "").replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g,
      (c) => "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0"));
  }

  function stateBadge(state, tag) {
    return el(tag || "span", { class: `state state-${state}` }, state);
  }

  function canWrite() { return !!who && (who.scope === "write" || who.scope === "admin"); }
  function canAdmin() { return !!who && who.scope === "admin"; }

  // who is logged in: the header, and the parts of the page a read key does not get
  async function session() {
    who = await api("GET", "/v1/whoami");
    document.getElementById("who").textContent = `${who.name} (${who.scope})`;
    document.getElementById("town").textContent = `town ${who.town}`;
    for (const node of document.querySelectorAll(".needs-write")) node.hidden = !canWrite();
    const logout = document.getElementById("logout");
    logout.addEventListener("click", async () => {
      try { await api("POST", "/logout"); } catch (_) { /* gone already */ }
      location.replace("/login");
    });
    return who;
  }

  // Call `refresh` now, on every event of `url`'s stream that `wanted` takes (a burst:
  // once), and every 10 s (heartbeats move without events); one call at a time.
  function live(url, refresh, wanted) {
    const badge = document.getElementById("live");
    let timer = null;
    let running = false;
    let again = false;
    const show = (on, text) => { badge.className = "live " + (on ? "on" : "off"); badge.textContent = text; };

    async function run() {
      timer = null;
      if (running) { again = true; return; }
      running = true;
      try { await refresh(); } catch (error) { failed(error); } finally {
        running = false;
        if (again) { again = false; kick(); }
      }
    }
    function kick() { if (timer === null) timer = setTimeout(run, 50); }

    function connect() {
      const source = new EventSource(url); // same origin: the session cookie goes with it
      source.onopen = () => { show(true, "live"); kick(); }; // (re)connected: catch up
      const seen = (message) => {
        if (!wanted) { kick(); return; }
        let event = null;
        try { event = JSON.parse(message.data); } catch (_) { return; }
        if (wanted(event)) kick();
      };
      for (const kind of KINDS) source.addEventListener(kind, seen);
      source.onerror = async () => {
        if (source.readyState !== EventSource.CLOSED) { show(false, "reconnecting"); return; }
        show(false, "offline");  // refused: the key is revoked, or the server is gone
        try { await api("GET", "/v1/whoami"); } catch (_) { /* 401: off to /login */ }
        setTimeout(connect, 3000);
      };
    }

    kick();
    connect();
    setInterval(kick, 10000);
    setInterval(tick, 1000);
  }

  // an action on an agent: POST /v1/agents/{id}/{action}, after a confirmation for
  // those that end its work
  async function control(agent, action) {
    const asks = { close: "finish its round and shut down", kill: "stop at its next round" };
    if (asks[action] && !confirm(`${action} ${agent.name}: ${asks[action]}?`)) return false;
    const done = await api("POST", `/v1/agents/${encodeURIComponent(agent.id)}/${action}`);
    notice(`${action}: ${done.name} is ${done.state}`);
    return true;
  }

  // the control buttons an agent in `state` can take, for this key's scope
  function controls(agent, after) {
    if (!canWrite()) return [];
    const terminal = ["stopped", "cold", "error"].includes(agent.state);
    const offered = [];
    if (agent.state !== "paused" && !terminal) offered.push("interrupt");
    if (agent.state === "paused") offered.push("resume");
    if (!terminal && agent.state !== "draining") offered.push("close");
    if (canAdmin() && agent.state !== "stopped") offered.push("kill");
    if (canAdmin() && terminal) offered.push("restart");
    return offered.map((action) => el("button", {
      type: "button", class: action === "kill" || action === "close" ? "danger" : null,
      dataset: { action, agent: agent.name },
      onclick: async (event) => {
        event.target.disabled = true;
        try { if (await control(agent, action)) await after(); } catch (error) { failed(error); } finally {
          event.target.disabled = false;
        }
      },
    }, action));
  }

  return { api, el, fill, notice, failed, parseTime, age, ageCell, relative, whenCell, cost,
    roundCost, money, usageText, sessionText, short, clip, visible, stateBadge, session, live,
    controls, canWrite, canAdmin, ApiError };
})();
