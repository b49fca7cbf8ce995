// Apps and their functions as registered: triggers, retries and flow control; sync by URL;
// invoke a function with a JSON payload.

import { get, post } from "./api.js";
import { ago, errorBox, h, link, replace, stamp, toast } from "./dom.js";

const per = (key) => (key ? ` per ${key}` : "");

/** One readable line per flow-control setting, from the registered config's wire names. */
export function flowControl(flow) {
  const out = [];
  for (const c of flow.concurrency || []) out.push(["concurrency", `${c.limit} at once${per(c.key)}${c.scope && c.scope !== "fn" ? ` (${c.scope})` : ""}`]);
  if (flow.throttle) out.push(["throttle", `${flow.throttle.limit} starts / ${flow.throttle.period}${flow.throttle.burst > 1 ? `, burst ${flow.throttle.burst}` : ""}${per(flow.throttle.key)}`]);
  if (flow.rateLimit) out.push(["rate limit", `${flow.rateLimit.limit} / ${flow.rateLimit.period}${per(flow.rateLimit.key)}`]);
  if (flow.debounce) out.push(["debounce", `${flow.debounce.period}${flow.debounce.timeout ? `, at most ${flow.debounce.timeout}` : ""}${per(flow.debounce.key)}`]);
  if (flow.batchEvents) out.push(["batch", `up to ${flow.batchEvents.maxSize} events${flow.batchEvents.timeout ? ` or ${flow.batchEvents.timeout}` : ""}${per(flow.batchEvents.key)}`]);
  if (flow.idempotency) out.push(["idempotency", flow.idempotency]);
  if (flow.singleton) out.push(["singleton", `${flow.singleton.mode}${per(flow.singleton.key)}`]);
  if (flow.priority) out.push(["priority", flow.priority.run || "–"]);
  for (const c of flow.cancel || []) out.push(["cancel on", `${c.event}${c.if ? ` if ${c.if}` : ""}${c.timeout ? ` within ${c.timeout}` : ""}`]);
  if (flow.timeouts) out.push(["timeouts", Object.entries(flow.timeouts).map(([k, v]) => `${k} ${v}`).join(", ")]);
  return out;
}

function triggers(list) {
  return list.map((t) => h("span", { class: "trigger-chip mono" },
    t.event ? t.event : `cron ${t.cron}`, t.expression ? h("span", { class: "muted" }, ` if ${t.expression}`) : null));
}

export function mount(root) {
  const body = h("div");
  const invoking = new Set(); // functions whose invoke form is open
  const drafts = new Map(); // function id -> the JSON typed so far (kept across refreshes)
  const urlInput = h("input", { id: "sync-url", type: "url", placeholder: "http://127.0.0.1:3000/api/inngest", required: true, "aria-label": "App URL" });
  const sync = async (url, button) => {
    button.disabled = true;
    try {
      const reply = await post("/v1/apps/sync", { url });
      const apps = reply.data.apps.map((a) => a.app_id).join(", ");
      toast(apps ? `Synced ${apps}` : "The app answered; it registers with the server it is configured for");
      await refresh();
    } catch (error) {
      toast(`Sync: ${error.message}`, "bad");
    } finally {
      button.disabled = false;
    }
  };
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); sync(urlInput.value.trim(), e.submitter || form.querySelector("button")); } },
    urlInput, h("button", { type: "submit", class: "primary" }, "Sync app"));
  replace(root, h("section", { class: "panel" },
    h("div", { class: "panel-head" }, h("h1", {}, "Functions")),
    h("p", { class: "muted" }, "Ask an app to sync: it sends its functions to the server it is configured for (INNGEST_DEV or its base URL)."),
    form, body));

  async function refresh() {
    try {
      const [apps, functions] = await Promise.all([get("/v1/apps"), get("/v1/functions")]);
      // Not while an invoke's data is being typed: the poll would take the caret away.
      if (document.activeElement && document.activeElement.classList.contains("invoke-data")) return;
      render(apps.data, functions.data);
    } catch (error) {
      replace(body, errorBox(error));
    }
  }

  function render(apps, functions) {
    if (!apps.length) {
      replace(body, h("p", { class: "empty" }, "No app has synced yet."));
      return;
    }
    replace(body, apps.map((app) => {
      const mine = functions.filter((f) => f.app_id === app.app_id);
      const resync = h("button", { type: "button", onclick: (e) => sync(app.url, e.target) }, "Resync");
      return h("article", { class: "app", dataset: { appId: app.app_id } },
        h("div", { class: "app-head" },
          h("h2", {}, app.app_id),
          h("span", { class: "muted mono" }, app.url),
          h("span", { class: "spacer" }),
          h("span", { class: "muted", title: stamp(app.synced_at) }, `synced ${ago(app.synced_at)}`),
          app.sdk ? h("span", { class: "tag" }, app.sdk) : null,
          resync),
        h("table", { class: "functions" },
          h("thead", {}, h("tr", {}, ["Function", "Triggers", "Retries", "Flow control", ""].map((t) => h("th", {}, t)))),
          h("tbody", {}, mine.map((fn) => [functionRow(fn), invoking.has(fn.function_id) ? invokeRow(fn) : null]))));
    }));
  }

  function functionRow(fn) {
    return h("tr", { class: "function-row", dataset: { functionId: fn.function_id } },
      h("td", {}, h("div", { class: "fn-name" }, fn.name), h("div", { class: "muted mono" }, fn.function_id)),
      h("td", {}, triggers(fn.triggers)),
      h("td", { class: "num" }, String(fn.retries)),
      h("td", { class: "flow" }, flowControl(fn.flow_control).map(([k, v]) => h("div", { class: "flow-line" }, h("span", { class: "flow-key" }, k), " ", v)),
        Object.keys(fn.flow_control).length ? null : h("span", { class: "muted" }, "none")),
      h("td", { class: "fn-actions" }, link(`#/runs?function=${encodeURIComponent(fn.function_id)}`, "runs"), " ",
        h("button", { type: "button", class: "invoke-open", onclick: () => toggleInvoke(fn.function_id) }, "Invoke")));
  }

  function toggleInvoke(fnId) {
    if (invoking.has(fnId)) invoking.delete(fnId);
    else invoking.add(fnId);
    refresh();
  }

  /** Data for the event the function is invoked with; the run it starts opens once started. */
  function invokeRow(fn) {
    const data = h("textarea", { class: "invoke-data", rows: "5", spellcheck: "false", "aria-label": `Data for ${fn.function_id}`,
      oninput: (e) => drafts.set(fn.function_id, e.target.value) });
    data.value = drafts.get(fn.function_id) ?? "{}";
    const error = h("p", { class: "error invoke-error", hidden: true });
    const submit = h("button", { type: "button", class: "primary invoke-submit", onclick: async () => {
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
        const reply = await post(`/v1/functions/${encodeURIComponent(fn.function_id)}/invoke`, { data: payload });
        invoking.delete(fn.function_id);
        drafts.delete(fn.function_id);
        toast(`Invoked ${fn.function_id}`);
        location.hash = `#/runs/${reply.data.run_id}`;
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      } finally {
        submit.disabled = false;
      }
    } }, "Invoke with this data");
    return h("tr", { class: "invoke-row", dataset: { functionId: fn.function_id } }, h("td", { colspan: "5" },
      h("label", {}, "Event data (JSON object) ", data), error, h("div", { class: "actions" }, submit)));
  }

  return { refresh, interval: 10000 };
}
