// One run: what started it, its step timeline (waits, sleeps, retries, parallel branches) with
// each step's input, output or error, and the operator's buttons: cancel, replay, rerun.

import { del, get, post } from "./api.js";
import { badge, clock, duration, errorBox, h, json, link, ms, replace, runDuration, stamp, toast } from "./dom.js";

const KIND_ICON = { run: "▶", sleep: "☾", wait: "✉", signal: "⚑", invoke: "↗", step: "•" };
const KIND_LABEL = { run: "step", sleep: "sleep", wait: "wait for event", signal: "wait for signal", invoke: "invoke", step: "step" };
const TERMINAL = new Set(["Completed", "Failed", "Cancelled"]);

function stepEnd(step, now) {
  return ms(step.ended_at) ?? (TERMINAL.has(step.status) ? ms(step.started_at) : now);
}

/** Parallel branches: steps queued as planned work (reported together with other steps, each
 * then run by its own call) and steps whose time spans overlap another's. */
function parallelSteps(steps, now) {
  const spans = steps.map((s) => [ms(s.started_at), stepEnd(s, now)]);
  const out = new Set(steps.filter((s) => s.queued_at).map((s) => s.step_id));
  spans.forEach(([a0, a1], i) => {
    if (a0 === null) return;
    spans.forEach(([b0, b1], j) => {
      if (i !== j && b0 !== null && a0 < b1 && b0 < a1) out.add(steps[i].step_id);
    });
  });
  return out;
}

/** "until …" for a step still sleeping or waiting: when it will wake or give up. */
function until(step) {
  const input = step.input || {};
  const at = step.status === "Sleeping" ? input.wake_at : step.status === "Waiting" ? input.expires_at : null;
  if (!at) return null;
  const sameDay = new Date(at).toDateString() === new Date().toDateString();
  return h("span", { class: "muted until", title: stamp(at) }, `until ${sameDay ? clock(at) : stamp(at)}`);
}

export function mount(root, params, runId) {
  const expanded = new Set(params.get("step") ? [params.get("step")] : []);
  let run = null;
  let confirming = false;
  let busy = false;

  const head = h("div", { class: "run-head" });
  const facts = h("div", { class: "facts" });
  const timeline = h("div", { class: "timeline", id: "timeline" });
  const result = h("div", { class: "result" });
  const trigger = h("div", { class: "trigger" });
  replace(root,
    h("section", { class: "panel" },
      h("nav", { class: "crumbs" }, link("#/runs", "Runs"), " / ", h("span", { class: "mono" }, runId)),
      head, facts),
    h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Timeline")), timeline),
    h("div", { class: "two" },
      h("section", { class: "panel" }, h("h2", {}, "Result"), result),
      h("section", { class: "panel" }, h("h2", {}, "Trigger"), trigger)));

  async function act(label, call) {
    if (busy) return;
    busy = true;
    try {
      await call();
    } catch (error) {
      toast(`${label}: ${error.message}`, "bad");
    } finally {
      busy = false;
    }
  }

  const cancel = () => act("Cancel", async () => {
    const reply = await del(`/v1/runs/${runId}`);
    confirming = false;
    run = { ...run, ...reply.data };
    toast(reply.data.status === "Cancelled" ? "Run cancelled" : `The run had already ended: ${reply.data.status}`);
    await refresh(true);
  });
  const replay = () => act("Replay", async () => {
    const reply = await post(`/v1/runs/${runId}/replay`);
    toast("Replay started");
    location.hash = `#/runs/${reply.data.run_id}`;
  });
  const rerun = (step) => act("Rerun", async () => {
    const reply = await post(`/v1/runs/${runId}/rerun`, { step_id: step.step_id });
    toast(`Rerun from “${step.name}” started`);
    location.hash = `#/runs/${reply.data.run_id}`;
  });

  function renderHead() {
    const live = run.status === "Running";
    const actions = h("div", { class: "actions" });
    if (live && !confirming) {
      actions.append(h("button", { type: "button", class: "danger", id: "cancel-run", onclick: () => { confirming = true; renderHead(); } }, "Cancel run"));
    }
    if (live && confirming) {
      actions.append(h("span", { class: "confirm" }, "Cancel this run?"),
        h("button", { type: "button", class: "danger", id: "confirm-cancel", onclick: cancel }, "Yes, cancel it"),
        h("button", { type: "button", onclick: () => { confirming = false; renderHead(); } }, "No"));
    }
    actions.append(h("button", { type: "button", id: "replay-run", title: "A new run with the same events, on the current code", onclick: replay }, "Replay"));
    replace(head,
      h("div", { class: "title-row" }, h("h1", {}, run.function_id), badge(run.status, "big"),
        live ? h("span", { class: "live" }, "live") : null),
      actions);
    const o = run.origin;
    const event = (run.events || [])[0];
    replace(facts,
      fact("Run", h("span", { class: "mono", id: "run-id" }, run.run_id)),
      fact("Trigger", event ? [h("span", { class: "mono" }, event.name), " ", link(`#/events?event=${run.event_id}`, "event")] : "–"),
      fact("Started", h("span", { title: stamp(run.run_started_at) }, clock(run.run_started_at))),
      fact("Ended", h("span", { title: stamp(run.ended_at) }, clock(run.ended_at))),
      fact("Duration", duration(runDuration(run))),
      o ? fact("Origin", [o.kind === "rerun" ? `Rerun from “${o.step_name || o.step_id}” of ` : "Replay of ",
        link(`#/runs/${o.run_id}`, h("span", { class: "mono", id: "origin-link" }, o.run_id))]) : null);
  }

  function fact(label, value) {
    return h("div", { class: "fact" }, h("span", { class: "label" }, label), h("span", { class: "value" }, value));
  }

  function renderTimeline() {
    const steps = run.steps || [];
    const now = Date.now();
    if (!steps.length) {
      replace(timeline, h("p", { class: "empty" }, run.status === "Running" ? "Starting… no step has reported yet." : "This run had no steps."));
      return;
    }
    // The axis is this run's own time. A step a rerun copied ran in the original run, before
    // this one began: it is shown at the time it first ran, beside the axis, not on it.
    const own = steps.filter((s) => !s.copied_from);
    const t0 = ms(run.run_started_at) ?? Math.min(...own.map((s) => ms(s.started_at) ?? now));
    let t1 = ms(run.ended_at) ?? now;
    for (const s of own) t1 = Math.max(t1, stepEnd(s, now) ?? t1);
    const span = Math.max(1, t1 - t0);
    const parallel = parallelSteps(own, now);
    const frac = (t) => Math.min(1, Math.max(0, (t - t0) / span));

    const axis = h("div", { class: "axis" }, h("span", {}),
      h("div", { class: "ticks" }, [0, 0.25, 0.5, 0.75, 1].map((f) => {
        const tick = h("span", {}, `+${duration(f * span)}`);
        tick.style.left = `${f * 100}%`;
        return tick;
      })), h("span", {}));
    const rows = steps.map((step) => {
      const start = ms(step.started_at);
      const end = stepEnd(step, now);
      const bar = h("div", { class: `bar k-${step.kind} s-${step.status.toLowerCase()}`, title: `${step.name}: ${step.status}` });
      let track = bar;
      if (step.copied_from) {
        bar.hidden = true;
        track = h("span", { class: "memo-note muted", title: stamp(step.started_at) }, `memoized · first ran ${clock(step.started_at)}`);
      } else if (start !== null) {
        // Both ends on the axis: a bar never starts before it nor runs past it.
        const left = frac(start);
        const right = Math.max(left, frac(Math.max(end, start)));
        bar.style.left = `min(${left * 100}%, calc(100% - 3px))`;
        bar.style.width = `max(3px, ${(right - left) * 100}%)`;
        bar.style.maxWidth = `${(1 - left) * 100}%`;
      } else {
        bar.hidden = true;
      }
      const open = expanded.has(step.step_id);
      const row = h("div", {
        class: `step-row${open ? " open" : ""}`, role: "button", tabindex: "0", "aria-expanded": String(open),
        dataset: { stepId: step.step_id, stepName: step.name, kind: step.kind, status: step.status },
        onclick: () => toggle(step.step_id),
        onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(step.step_id); } },
      },
      h("div", { class: "step-label" },
        h("span", { class: `kind k-${step.kind}`, title: KIND_LABEL[step.kind] }, KIND_ICON[step.kind] || "•"),
        h("span", { class: "step-name" }, step.name),
        parallel.has(step.step_id) ? h("span", { class: "tag parallel", title: "ran side by side with another step" }, "parallel") : null,
        step.attempts > 1 ? h("span", { class: "tag retry", title: "attempts, the last one succeeding or failing for good" }, `${step.attempts} attempts`) : null,
        step.kind === "signal" && step.input && step.input.signal
          ? h("span", { class: "tag signal mono", title: "the signal this step waits for (POST /v1/signals resumes it)" }, `signal ${step.input.signal}`)
          : null,
        step.timed_out ? h("span", { class: "tag", title: "no matching event arrived in time" }, "timed out") : null,
        until(step),
        step.copied_from ? h("span", { class: "tag", title: `result copied from run ${step.copied_from}` }, "memoized") : null),
      h("div", { class: "step-track" }, track),
      h("div", { class: "step-meta" }, badge(step.status), h("span", { class: "num" }, step.ended_at ? duration(step.duration_ms) : start !== null && !TERMINAL.has(step.status) ? `${duration(now - start)}…` : "")));
      return [row, open ? stepDetail(step) : null];
    });
    replace(timeline, axis, rows);
  }

  function toggle(stepId) {
    if (expanded.has(stepId)) expanded.delete(stepId);
    else expanded.add(stepId);
    renderTimeline();
  }

  function stepDetail(step) {
    const input = step.input;
    const dl = h("dl", { class: "kv" });
    for (const [k, v] of [
      ["Step id", h("span", { class: "mono" }, step.step_id)],
      ["Kind", `${KIND_LABEL[step.kind] || step.kind}${step.op ? ` (${step.op})` : ""}`],
      ["Attempts", step.attempts ?? "–"],
      ["Queued", step.queued_at ? clock(step.queued_at) : "–"],
      ["Started", clock(step.started_at)],
      ["Ended", clock(step.ended_at)],
      ["Took", step.ended_at ? duration(step.duration_ms) : "–"],
    ]) dl.append(h("dt", {}, k), h("dd", {}, v));
    const body = [dl, attempts(step)];
    if (input) body.push(h("h4", {}, "Input"), json(input));
    if (step.error) {
      body.push(h("h4", { class: "bad" }, "Error"),
        h("p", { class: "error-line" }, `${step.error.name || "Error"}: ${step.error.message || ""}`),
        step.error.stack ? h("pre", { class: "json stack" }, step.error.stack) : null);
    } else if ("output" in step) {
      body.push(h("h4", {}, "Output"), json(step.output));
    }
    if (step.copied_from) body.push(h("p", { class: "muted" }, "Result copied from run ", link(`#/runs/${step.copied_from}`, step.copied_from), "."));
    if (TERMINAL.has(step.status) && step.status !== "Cancelled") {
      body.push(h("div", { class: "actions" }, h("button", {
        type: "button", class: "rerun", title: "A new run that keeps the results of the steps before this one",
        onclick: (e) => { e.stopPropagation(); rerun(step); },
      }, "Rerun from this step")));
    }
    return h("div", { class: "step-detail", dataset: { stepName: step.name } }, body);
  }

  /** Every attempt of a step that was retried: each failure with its error and how long it
   * took, then the attempt that settled the step. */
  function attempts(step) {
    const failed = step.failed_attempts || [];
    if (!failed.length) return null;
    const line = (n, ok, took, at, error) => h("li", { class: `attempt ${ok ? "ok" : "failed"}`, dataset: { attempt: String(n ?? "") } },
      h("span", { class: "num" }, `#${n ?? "?"}`), " ", ok ? "succeeded" : "failed", ` after ${duration(took)}`,
      h("span", { class: "muted" }, ` at ${clock(at)}`),
      error ? [": ", h("span", { class: "error-line" }, `${error.name || "Error"}: ${error.message || ""}`)] : null);
    return [h("h4", {}, "Attempts"), h("ol", { class: "attempts" },
      failed.map((a) => line(a.attempt, false, a.duration_ms, a.started_at, a.error || {})),
      line(step.attempts, step.status === "Completed", step.duration_ms, step.started_at, step.error))];
  }

  function renderResult() {
    if (run.error) {
      replace(result, h("p", { class: "error-line" }, `${run.error.name || "Error"}: ${run.error.message || ""}`),
        run.error.stack ? h("pre", { class: "json stack" }, run.error.stack) : null);
    } else if (run.status === "Completed") {
      replace(result, h("div", { id: "run-output" }, json(run.output)));
    } else {
      replace(result, h("p", { class: "muted" }, run.status === "Running" ? "Not finished yet." : "No output."));
    }
    const events = run.events || [];
    replace(trigger, events.map((e) => [h("p", { class: "mono" }, e.name), json(e.data)]));
  }

  async function refresh(force = false) {
    if (!force && run && TERMINAL.has(run.status) && !(run.steps || []).some((s) => !TERMINAL.has(s.status))) return;
    try {
      run = (await get(`/v1/runs/${runId}`)).data;
    } catch (error) {
      if (!run) replace(head, errorBox(error));
      return;
    }
    if (!confirming || run.status !== "Running") confirming = confirming && run.status === "Running";
    renderHead();
    renderTimeline();
    renderResult();
  }

  return { refresh, interval: 1000 };
}
