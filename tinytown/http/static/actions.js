// What a person answers a task or a mission that waits for one: approve or reject it
// (with an optional note), reply to an agent's question, cancel a mission. Offered only
// to a key with the write scope, and only in the state that takes the answer (the API
// checks both again). States are matched by their names, as the API gives them.
"use strict";

const ttActions = (() => {
  const { api, el } = tt;
  const DONE = { approve: "approved", reject: "rejected", reply: "answered", cancel: "cancelled" };

  // the button's call, then `after` (the page's refresh); the button is off meanwhile
  async function run(button, call, after) {
    button.disabled = true;
    try {
      await call();
      await after();
    } catch (error) { tt.failed(error); } finally { button.disabled = false; }
  }

  // approve and reject, with a note: `path` is /v1/tasks/{id} or /v1/missions/{name}
  function approval(path, label, after) {
    const note = el("input", { class: "note", placeholder: "note (optional)", maxlength: 2000,
      "aria-label": `note on ${label}` });
    const button = (action) => el("button", {
      type: "button", class: action === "reject" ? "danger" : null, dataset: { action },
      onclick: (event) => run(event.target, async () => {
        const text = note.value.trim();
        const answer = await api("POST", `${path}/${action}`, { note: text || null });
        note.value = "";
        tt.notice(`${label} ${DONE[action]}` + (answer && answer.state ? `: ${answer.state}` : ""));
      }, after),
    }, action);
    return el("span", { class: "answer" }, note, button("approve"), button("reject"));
  }

  // a text box and a button: the answer goes to the agent's session
  function reply(task, label, after) {
    const box = el("textarea", { class: "reply", placeholder: "your answer", maxlength: 100000,
      "aria-label": `answer to ${label}`, dataset: { task: task.id } });
    const send = el("button", {
      type: "button", dataset: { action: "reply" },
      onclick: (event) => run(event.target, async () => {
        const answer = box.value.trim();
        if (!answer) throw new Error("write an answer first");
        await api("POST", `/v1/tasks/${encodeURIComponent(task.id)}/reply`, { answer });
        box.value = "";
        tt.notice(`${label} ${DONE.reply}`);
      }, after),
    }, "reply");
    return el("span", { class: "answer" }, box, send);
  }

  // the answers a task in its state takes, for this key ([] for a read key)
  function forTask(task, label, after) {
    if (!tt.canWrite()) return [];
    const path = `/v1/tasks/${encodeURIComponent(task.id)}`;
    if (task.state === "awaiting_approval") return [approval(path, label, after)];
    if (task.state === "awaiting_input") return [reply(task, label, after)];
    return [];
  }

  // a mission's: approve or reject it before it starts; cancel it while it is not ended
  function forMission(mission, after) {
    if (!tt.canWrite()) return [];
    const path = `/v1/missions/${encodeURIComponent(mission.name)}`;
    const offered = [];
    if (mission.state === "awaiting_approval") offered.push(approval(path, `mission ${mission.name}`, after));
    if (!["done", "failed", "cancelled"].includes(mission.state)) {
      offered.push(el("button", {
        type: "button", class: "danger", dataset: { action: "cancel" },
        onclick: (event) => {
          if (!confirm(`cancel mission ${mission.name}: its unfinished tasks are cancelled?`)) return;
          run(event.target, async () => {
            const ended = await api("POST", `${path}/cancel`);
            tt.notice(`mission ${ended.name} ${ended.state}`);
          }, after);
        },
      }, "cancel mission"));
    }
    return offered;
  }

  // the question an agent asked (its task's `question`, else GET /v1/questions' entry)
  function questionOf(task, questions) {
    if (task.question) return String(task.question);
    const found = (questions || []).find((q) => [q.task, q.task_id, q.id].includes(task.id));
    return found ? String(found.question || found.text || "") : "";
  }

  // the open questions, or [] where the API has none to give
  async function questions() {
    try {
      const found = await api("GET", "/v1/questions");
      return Array.isArray(found) ? found : (found && found.questions) || [];
    } catch (error) {
      if (error instanceof tt.ApiError && error.status !== 401) return [];
      throw error;
    }
  }

  return { forTask, forMission, questionOf, questions };
})();
