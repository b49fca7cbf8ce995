// Runs, newest first, across functions: live status, filters, search, pages.

import { get, query } from "./api.js";
import { ago, badge, duration, errorBox, h, link, replace, runDuration, stamp } from "./dom.js";

const WINDOWS = { "": "Any time", "15m": "Last 15 minutes", "1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days" };
const WINDOW_MS = { "15m": 15 * 60e3, "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };
const STATUSES = ["", "Running", "Completed", "Failed", "Cancelled"];
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/i;

export function origin(run) {
  const o = run.origin;
  if (!o) return null;
  const what = o.kind === "rerun" ? `rerun from ${o.step_name || "a step"}` : "replay";
  return h("span", { class: "tag", title: `${what} of run ${o.run_id}` }, o.kind === "rerun" ? "rerun" : "replay");
}

export function mount(root, params) {
  const state = {
    function: params.get("function") || "",
    status: params.get("status") || "",
    window: params.get("window") || "",
    q: params.get("q") || "",
    cursors: [null], // the cursor of each page visited; the last one is shown
  };

  const remember = () => {
    const p = new URLSearchParams();
    for (const key of ["function", "status", "window", "q"]) if (state[key]) p.set(key, state[key]);
    const text = p.toString();
    history.replaceState(null, "", `#/runs${text ? `?${text}` : ""}`);
  };
  const changed = () => {
    state.cursors = [null];
    remember();
    refresh();
  };

  const fnSelect = h("select", { id: "filter-function", "aria-label": "Function", onchange: (e) => { state.function = e.target.value; changed(); } },
    h("option", { value: "" }, "All functions"));
  const statusSelect = h("select", { id: "filter-status", "aria-label": "Status", onchange: (e) => { state.status = e.target.value; changed(); } },
    STATUSES.map((s) => h("option", { value: s, selected: s === state.status }, s || "Any status")));
  const windowSelect = h("select", { id: "filter-window", "aria-label": "Started", onchange: (e) => { state.window = e.target.value; changed(); } },
    Object.entries(WINDOWS).map(([value, label]) => h("option", { value, selected: value === state.window }, label)));
  const search = h("input", {
    id: "filter-search", type: "search", placeholder: "Search run id, event, function…", value: state.q, "aria-label": "Search",
    oninput: (e) => { state.q = e.target.value.trim(); remember(); render(); },
  });
  const body = h("div", { class: "table-wrap" });
  const pager = h("div", { class: "pager" });
  const live = h("span", { class: "live", title: "Refreshed every 1.5 s" }, "live");

  replace(root,
    h("section", { class: "panel" },
      h("div", { class: "panel-head" }, h("h1", {}, "Runs"), live),
      h("div", { class: "filters" }, fnSelect, statusSelect, windowSelect, search),
      body, pager));

  get("/v1/functions").then((reply) => {
    for (const fn of reply.data) {
      fnSelect.append(h("option", { value: fn.function_id, selected: fn.function_id === state.function }, fn.name || fn.function_id));
    }
  }).catch(() => {});

  let page = { data: [], cursor: null };
  let lastError = null;
  let asked = 0; // a filter change asks again while a poll may be in flight: the last ask wins

  async function refresh() {
    const mine = ++asked;
    const after = WINDOW_MS[state.window] ? Date.now() - WINDOW_MS[state.window] : undefined;
    let reply = null;
    let error = null;
    try {
      reply = await get(`/v1/runs${query({
        function_id: state.function, status: state.status, created_after: after, limit: 50,
        cursor: state.cursors[state.cursors.length - 1],
      })}`);
    } catch (err) {
      error = err;
    }
    if (mine !== asked) return;
    if (reply) page = reply;
    lastError = error;
    render();
  }

  function matches(run) {
    if (!state.q) return true;
    const q = state.q.toLowerCase();
    return [run.run_id, run.function_id, run.event_name, run.event_id, run.status]
      .some((v) => v && String(v).toLowerCase().includes(q));
  }

  function render() {
    const runs = page.data.filter(matches);
    const rows = runs.map((run) => h("tr", { class: "run-row", dataset: { runId: run.run_id, status: run.status }, onclick: (e) => {
      if (e.target.closest("a")) return;
      location.hash = `#/runs/${run.run_id}`;
    } },
      h("td", {}, badge(run.status)),
      h("td", { class: "mono" }, link(`#/runs/${run.run_id}`, run.run_id), " ", origin(run)),
      h("td", {}, run.function_id),
      h("td", { class: "mono" }, run.event_name || "–"),
      h("td", { title: stamp(run.run_started_at) }, ago(run.run_started_at)),
      h("td", { class: "num" }, duration(runDuration(run)))));
    const table = h("table", { class: "runs", id: "runs-table" },
      h("thead", {}, h("tr", {}, ["Status", "Run", "Function", "Trigger", "Started", "Duration"].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows));
    const notes = [];
    if (lastError) notes.push(errorBox(lastError));
    if (!runs.length) {
      notes.push(h("p", { class: "empty" }, page.data.length ? "No run on this page matches the search." : "No runs yet. Send an event to start one."));
    }
    if (state.q && ULID.test(state.q) && !runs.some((r) => r.run_id.toUpperCase() === state.q.toUpperCase())) {
      notes.push(h("p", { class: "hint" }, "Looks like an id: ",
        link(`#/runs/${state.q.toUpperCase()}`, "open run ", h("span", { class: "mono" }, state.q.toUpperCase())),
        " or see ", link(`#/events?event=${state.q.toUpperCase()}`, "the event's runs"), "."));
    }
    replace(body, table, notes);
    const older = h("button", { type: "button", disabled: !page.cursor, onclick: () => { state.cursors.push(page.cursor); refresh(); } }, "Older →");
    const newer = h("button", { type: "button", disabled: state.cursors.length < 2, onclick: () => { state.cursors.pop(); refresh(); } }, "← Newer");
    replace(pager, newer, h("span", { class: "muted" }, `page ${state.cursors.length}`), older);
  }

  return { refresh, interval: 1500 };
}
