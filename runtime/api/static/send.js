// "Send event": a test event from the page, then the runs it started, linked.

import { get, post } from "./api.js";
import { badge, h, link, replace } from "./dom.js";

export function setup() {
  const dialog = document.getElementById("send-dialog");
  const form = document.getElementById("send-form");
  const name = document.getElementById("send-name");
  const data = document.getElementById("send-data");
  const error = document.getElementById("send-error");
  const result = document.getElementById("send-result");
  const submit = document.getElementById("send-submit");
  let watching = 0;

  document.getElementById("send-open").addEventListener("click", () => {
    error.hidden = true;
    result.hidden = true;
    dialog.showModal();
    name.focus();
  });
  document.getElementById("send-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => { watching += 1; });
  result.addEventListener("click", (e) => { if (e.target.closest("a")) dialog.close(); });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.hidden = true;
    let payload;
    try {
      payload = data.value.trim() ? JSON.parse(data.value) : {};
      if (payload === null || typeof payload !== "object" || Array.isArray(payload)) throw new Error("expected a JSON object");
    } catch (err) {
      error.textContent = `Data: ${err.message}`;
      error.hidden = false;
      return;
    }
    submit.disabled = true;
    try {
      const reply = await post("/v1/events", { name: name.value.trim(), data: payload });
      const id = reply.ids[0];
      result.hidden = false;
      replace(result, h("p", {}, "Sent event ", link(`#/events?event=${id}`, h("span", { class: "mono", id: "sent-event-id" }, id)), "."),
        h("p", { class: "muted", id: "sent-runs" }, "Looking for the runs it started…"));
      watchRuns(id, ++watching);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });

  // Runs start right after the event is stored: poll briefly and link them as they appear.
  async function watchRuns(eventId, token) {
    for (let i = 0; i < 20 && token === watching; i += 1) {
      let runs = [];
      try {
        runs = (await get(`/v1/events/${eventId}/runs`)).data;
      } catch {
        runs = [];
      }
      const list = document.getElementById("sent-runs");
      if (!list || token !== watching) return;
      if (runs.length) {
        replace(list, "Started: ", runs.map((run) => h("span", { class: "started-run" },
          link(`#/runs/${run.run_id}`, h("span", { class: "mono" }, run.function_id)), " ", badge(run.status))));
        list.className = "";
        if (runs.every((r) => r.status !== "Running") || i > 3) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 400));
    }
    const list = document.getElementById("sent-runs");
    if (list && token === watching && list.classList.contains("muted")) list.textContent = "No function is triggered by this event.";
  }
}
