// Events, newest first, with the runs each one started. Stepline's own events (inngest/*: a
// function finished, failed, was invoked...) are hidden unless asked for: one comes with every run.

import { get, query } from "./api.js";
import { ago, badge, errorBox, h, json, link, replace, stamp } from "./dom.js";

const WINDOW_MS = { "15m": 15 * 60e3, "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };
const SHOWN = 25;
const internal = (event) => event.name.startsWith("inngest/");

export function mount(root, params) {
  const state = {
    name: params.get("name") || "", window: params.get("window") || "", focus: params.get("event") || "",
    internal: params.get("internal") === "1",
  };
  const open = new Set(state.focus ? [state.focus] : []);
  const runsOf = new Map();
  let events = [];
  let hidden = 0; // internal events left out of the page
  let focused = null; // the event asked for by id when it is not on the page
  let lastError = null;

  const remember = () => {
    const p = new URLSearchParams();
    for (const key of ["name", "window"]) if (state[key]) p.set(key, state[key]);
    if (state.internal) p.set("internal", "1");
    if (state.focus) p.set("event", state.focus);
    history.replaceState(null, "", `#/events${p.toString() ? `?${p}` : ""}`);
  };
  const nameInput = h("input", {
    id: "filter-event-name", type: "search", placeholder: "Event name, exactly (e.g. shop/order.placed)", value: state.name,
    "aria-label": "Event name", onchange: (e) => { state.name = e.target.value.trim(); remember(); refresh(); },
  });
  const windowSelect = h("select", { "aria-label": "Received", onchange: (e) => { state.window = e.target.value; remember(); refresh(); } },
    [["", "Any time"], ["15m", "Last 15 minutes"], ["1h", "Last hour"], ["24h", "Last 24 hours"], ["7d", "Last 7 days"]]
      .map(([value, label]) => h("option", { value, selected: value === state.window }, label)));
  const internalToggle = h("label", { class: "toggle" },
    h("input", { id: "show-internal", type: "checkbox", checked: state.internal,
      onchange: (e) => { state.internal = e.target.checked; remember(); refresh(); } }),
    " Show Stepline's internal events (inngest/…)");
  const focus = h("div");
  const body = h("div", { class: "table-wrap" });
  replace(root, h("section", { class: "panel" },
    h("div", { class: "panel-head" }, h("h1", {}, "Events"), h("span", { class: "live" }, "live")),
    h("div", { class: "filters" }, nameInput, windowSelect, internalToggle), focus, body));

  async function loadRuns(list) {
    await Promise.all(list.map(async (event) => {
      try {
        runsOf.set(event.internal_id, (await get(`/v1/events/${event.internal_id}/runs`)).data);
      } catch {
        /* shown as unknown */
      }
    }));
  }

  let asked = 0; // a filter change asks again while a poll may be in flight: the last ask wins

  async function refresh() {
    const mine = ++asked;
    const after = WINDOW_MS[state.window] ? Date.now() - WINDOW_MS[state.window] : undefined;
    try {
      // Hiding internal events, ask for more than are shown, so the page still fills up.
      const limit = state.internal || state.name ? SHOWN : 100;
      const listed = (await get(`/v1/events${query({ name: state.name, received_after: after, limit })}`)).data;
      if (mine !== asked) return;
      const kept = state.internal || state.name ? listed : listed.filter((e) => !internal(e));
      hidden = listed.length - kept.length;
      events = kept.slice(0, SHOWN);
      let found = null;
      if (state.focus && !events.some((e) => e.internal_id === state.focus)) {
        try {
          found = (await get(`/v1/events/${state.focus}`)).data;
        } catch (error) {
          found = { missing: error };
        }
      }
      if (mine !== asked) return;
      focused = found;
      await loadRuns(focused && !focused.missing ? [focused, ...events] : events);
      if (mine !== asked) return;
      lastError = null;
      render();
    } catch (error) {
      if (mine !== asked) return;
      lastError = error;
      render();
    }
  }

  function row(event) {
    const runs = runsOf.get(event.internal_id);
    const isOpen = open.has(event.internal_id);
    const tr = h("tr", { class: "event-row", dataset: { eventId: event.internal_id, name: event.name }, onclick: (e) => {
      if (e.target.closest("a")) return;
      if (open.has(event.internal_id)) open.delete(event.internal_id);
      else open.add(event.internal_id);
      render();
    } },
    h("td", { class: "mono" }, event.name),
    h("td", { class: "mono", title: event.internal_id }, event.internal_id),
    h("td", { title: stamp(event.received_at) }, ago(event.received_at)),
    h("td", { class: "event-runs" }, runs === undefined ? "…" : runs.length ? runs.map((run) =>
      link(`#/runs/${run.run_id}`, badge(run.status), " ", run.function_id)) : h("span", { class: "muted" }, "no runs")));
    const detail = isOpen ? h("tr", { class: "event-detail" }, h("td", { colspan: "4" }, json(event.data))) : null;
    return [tr, detail];
  }

  function render() {
    const notes = [];
    if (lastError) notes.push(errorBox(lastError));
    if (focused && focused.missing) notes.push(errorBox(focused.missing));
    replace(focus, focused && !focused.missing ? h("table", { class: "events focus" }, h("tbody", {}, row(focused))) : null);
    replace(body, h("table", { class: "events", id: "events-table" },
      h("thead", {}, h("tr", {}, ["Event", "Id", "Received", "Runs it started"].map((t) => h("th", {}, t)))),
      h("tbody", {}, events.map(row))), notes,
      events.length ? null : h("p", { class: "empty" }, "No events yet."),
      hidden ? h("p", { class: "muted", id: "internal-hidden" }, `${hidden} internal inngest/… event${hidden === 1 ? "" : "s"} hidden.`) : null);
  }

  return { refresh, interval: 3000 };
}
