// An app on the official npm `inngest` SDK (the `inngest/node` serve handler), used unmodified by
// the end-to-end tests. The same source runs on SDK 3.x and 4.x: `--sdk-dir` names the package
// directory (tests/ts/v3 or tests/ts/v4) whose node_modules hold the SDK to load. It learns where
// Stepline is from the environment, like any user app: INNGEST_DEV=<url> (dev mode), or
// INNGEST_DEV=0 with INNGEST_BASE_URL and INNGEST_SIGNING_KEY (signed cloud mode).
//
// Every step body bumps a counter keyed by (function, step, event.data.key), and GET /counters
// returns them, so a test can prove how many times each step really ran. The functions mirror
// tests/e2e/sdk_app.py. With COUNTER_FILE set, every bump is also appended to that file, so
// counts survive the app process being killed and started again (the crash tests). TS_APP_ID
// renames the app, so a second copy can be synced beside the first; it serves only the chain.
//
// Run: INNGEST_DEV=http://127.0.0.1:8288 node tests/ts/app/app.js --port 3000 --sdk-dir tests/ts/v4
"use strict";

const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const { createRequire } = require("node:module");

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`missing ${name}`);
  return process.argv[i + 1];
}

const port = Number(arg("--port"));
const sdkDir = path.resolve(arg("--sdk-dir"));
const sdkRequire = createRequire(path.join(sdkDir, "package.json"));
const { Inngest, NonRetriableError, RetryAfterError } = sdkRequire("inngest");
const { serve } = sdkRequire("inngest/node");
const sdkVersion = JSON.parse(
  fs.readFileSync(path.join(path.dirname(sdkRequire.resolve("inngest")), "package.json"), "utf8"),
).version;
const major = Number(sdkVersion.split(".")[0]);

const APP_ID = process.env.TS_APP_ID || "ts-app";
const COUNTER_FILE = process.env.COUNTER_FILE || "";
// A crash test's marker directory: a step asked to crash does so once per key (the marker file
// says it did), so the restarted process runs on.
const CRASH_DIR = process.env.CRASH_DIR || "";
const inngest = new Inngest({ id: APP_ID });

const counts = {};
const failures = {};
const active = {};

function bump(fn, step, event) {
  const key = `${fn}/${step}/${(event.data && event.data.key) || ""}`;
  counts[key] = (counts[key] || 0) + 1;
  if (COUNTER_FILE) fs.appendFileSync(COUNTER_FILE, `${key}\n`);
  return counts[key];
}

// Kill this process in the middle of a step, once per key: what a crash mid-run looks like.
function crashOnce(event, i) {
  if (!CRASH_DIR || event.data.crash_at !== i) return;
  const marker = path.join(CRASH_DIR, `${event.data.key}`);
  if (fs.existsSync(marker)) return;
  fs.writeFileSync(marker, String(i));
  process.exit(1);
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// v3: createFunction(options, trigger, handler); v4: createFunction({...options, triggers}, handler).
function createFunction(options, trigger, handler) {
  if (major >= 4) return inngest.createFunction({ ...options, triggers: [trigger] }, handler);
  return inngest.createFunction(options, trigger, handler);
}

const multiStep = createFunction({ id: "multi-step" }, { event: "test/multi" }, async ({ event, step, runId }) => {
  const a = await step.run("a", () => (bump("multi-step", "a", event), event.data.x ?? 1));
  const b = await step.run("b", () => (bump("multi-step", "b", event), a * 10));
  const c = await step.run("c", () => (bump("multi-step", "c", event), { sum: a + b }));
  return { a, b, c, run_id: runId };
});

const sleeper = createFunction({ id: "sleeper" }, { event: "test/sleep" }, async ({ event, step }) => {
  const before = await step.run("before", () => (bump("sleeper", "before", event), Date.now()));
  await step.sleep("nap", `${event.data.seconds ?? 3}s`);
  const after = await step.run("after", () => (bump("sleeper", "after", event), Date.now()));
  return { slept: (after - before) / 1000 };
});

const flaky = createFunction({ id: "flaky", retries: 4 }, { event: "test/flaky" }, async ({ event, step }) => {
  const first = await step.run("steady", () => (bump("flaky", "steady", event), "steady"));
  const result = await step.run("unreliable", () => {
    const n = bump("flaky", "unreliable", event);
    if (n <= (event.data.failures ?? 2)) throw new Error(`transient failure ${n}`);
    return `ok after ${n}`;
  });
  return { first, result };
});

const doomed = createFunction({ id: "doomed", retries: 2 }, { event: "test/doomed" }, async ({ event }) => {
  bump("doomed", "body", event);
  throw new Error("always broken");
});

const refuser = createFunction({ id: "refuser", retries: 5 }, { event: "test/refuse" }, async ({ event }) => {
  bump("refuser", "body", event);
  throw new NonRetriableError("do not retry me");
});

const fanA = createFunction({ id: "fan-a" }, { event: "test/fanout" }, async ({ event, step }) =>
  step.run("work", () => (bump("fan-a", "work", event), "a")),
);

const fanB = createFunction({ id: "fan-b" }, { event: "test/fanout" }, async ({ event, step }) =>
  step.run("work", () => (bump("fan-b", "work", event), "b")),
);

const filtered = createFunction(
  { id: "filtered" },
  { event: "test/filtered", if: "event.data.ok == true" },
  async ({ event, step }) => step.run("work", () => (bump("filtered", "work", event), "matched")),
);

const approval = createFunction({ id: "approval" }, { event: "test/approval.requested" }, async ({ event, step }) => {
  await step.run("ask", () => (bump("approval", "ask", event), "asked"));
  const decision = await step.waitForEvent("wait-decision", {
    event: "test/approval.decided",
    if: "event.data.key == async.data.key",
    timeout: `${event.data.timeout_s ?? 30}s`,
  });
  return { decision: decision ? decision.data.decision : null };
});

const child = createFunction({ id: "child" }, { event: "test/child.direct" }, async ({ event, step }) => {
  if (event.data.explode) throw new NonRetriableError("child exploded");
  if (event.data.linger_s) await step.sleep("linger", `${event.data.linger_s}s`);
  return { child_got: event.data.value, double: (event.data.value ?? 0) * 2 };
});

const parent = createFunction({ id: "parent" }, { event: "test/parent" }, async ({ event, step }) => {
  try {
    const result = await step.invoke("call-child", {
      function: child,
      data: {
        key: event.data.key,
        value: event.data.value ?? 1,
        explode: event.data.explode ?? false,
        linger_s: event.data.linger_s ?? 0,
      },
      timeout: `${event.data.timeout_s ?? 60}s`,
    });
    return { child: result };
  } catch (err) {
    return { child_error: String(err && err.message) };
  }
});

const sender = createFunction({ id: "sender" }, { event: "test/sender" }, async ({ event, step }) => {
  const sent = await step.sendEvent("send-followups", [
    { name: "test/multi", data: { key: `${event.data.key}-sent`, x: 5 } },
  ]);
  return { ids: sent.ids };
});

const parallel = createFunction({ id: "parallel" }, { event: "test/parallel" }, async ({ event, step }) => {
  const k = event.data.key || "";
  const branch = (name) =>
    step.run(name, async () => {
      bump("parallel", name, event);
      // Record how many branches overlap: proof that they run side by side.
      active[k] = (active[k] || 0) + 1;
      const peak = `parallel/max-active/${k}`;
      counts[peak] = Math.max(counts[peak] || 0, active[k]);
      await pause(event.data.branch_ms ?? 1000);
      active[k] -= 1;
      return name;
    });
  const results = await Promise.all([branch("p1"), branch("p2"), branch("p3")]);
  const joined = await step.run("join", () => (bump("parallel", "join", event), results));
  return { joined };
});

const cancellable = createFunction(
  { id: "cancellable", cancelOn: [{ event: "test/cancel", if: "event.data.key == async.data.key" }] },
  { event: "test/cancellable" },
  async ({ event, step }) => {
    await step.run("before", () => (bump("cancellable", "before", event), "ok"));
    await step.sleep("long-nap", "1h");
    return step.run("after", () => (bump("cancellable", "after", event), "never"));
  },
);

const careful = createFunction(
  {
    id: "careful",
    retries: 1,
    onFailure: async ({ event, error }) => {
      // The handler's event is inngest/function.failed: the failed run's event is inside it.
      const original = (event.data.event && event.data.event.data) || {};
      const k = original.key || "";
      counts[`careful-failure/handler/${k}`] = (counts[`careful-failure/handler/${k}`] || 0) + 1;
      failures[k] = error ? error.message : null;
    },
  },
  { event: "test/careful" },
  async ({ event, step }) => {
    try {
      await step.run("breaks", () => {
        bump("careful", "breaks", event);
        throw new Error("step went boom");
      });
    } catch (err) {
      if (event.data.rethrow) throw err;
      return { caught: String(err && err.message) };
    }
    return { caught: null };
  },
);

// Race mode: the run goes on as soon as the first branch is done, while the other still runs.
// SDK 4 tags the steps with parallelMode "race" through group.parallel; SDK 3 has no group
// tools and races with Promise.race alone (execution version 1 reports each branch as it ends).
const racer = createFunction({ id: "racer" }, { event: "test/race" }, async ({ event, step, group }) => {
  const race = () => {
    const fast = step.run("fast", async () => (bump("racer", "fast", event), "fast"));
    const slow = step.run("slow", async () => {
      bump("racer", "slow", event);
      await pause(event.data.slow_ms ?? 4000);
      return "slow";
    });
    return Promise.race([fast, slow]);
  };
  const winner = group && group.parallel ? await group.parallel({ mode: "race" }, race) : await race();
  const after = await step.run("after-race", () => (bump("racer", "after", event), `${winner} won`));
  return { winner, after };
});

const patient = createFunction({ id: "patient", retries: 2 }, { event: "test/patient" }, async ({ event }) => {
  const n = bump("patient", "body", event);
  if (n === 1) throw new RetryAfterError("later please", "2s");
  return `attempt ${n}`;
});

// Checkpointing: a chain of event.data.steps sequential steps, run inline and checkpointed as
// they go (SDK 4 does by default, SDK 3 when asked), and the same chain with it turned off.
const chainBody = (name) => async ({ event, step }) => {
  let total = 0;
  for (let i = 1; i <= (event.data.steps ?? 40); i++) {
    total += await step.run(`s${i}`, async () => {
      bump(name, `s${i}`, event);
      crashOnce(event, i);
      if (event.data.step_ms) await pause(event.data.step_ms);
      return i;
    });
  }
  return { total };
};
const chain = createFunction(
  { id: "chain", retries: 10, checkpointing: true },
  { event: process.env.CHAIN_EVENT || "test/chain" },
  chainBody("chain"),
);
const chainPlain = createFunction(
  { id: "chain-plain", retries: 2, checkpointing: false },
  { event: "test/chain.plain" },
  chainBody("chain-plain"),
);

// Checkpointed steps around a parallel group and a sleep: the run leaves checkpointing for the
// group, comes back to it after, and a sleep ends the call in between.
const mixed = createFunction({ id: "mixed", retries: 2, checkpointing: true }, { event: "test/mixed" }, async ({ event, step }) => {
  const one = (name) => step.run(name, () => (bump("mixed", name, event), name));
  const head = [await one("a"), await one("b")];
  const both = await Promise.all([one("p1"), one("p2")]);
  const after = [await one("c"), await one("d")];
  await step.sleep("nap", `${event.data.sleep_s ?? 1}s`);
  const tail = [await one("e"), await one("f")];
  return { steps: [...head, ...both, ...after, ...tail] };
});

// Checkpointed steps, then a step that fails for good (no retries) and is caught: the reply
// that reports the failure comes after steps stored by checkpoint in the same call.
const caughtAfterCheckpoints = createFunction(
  { id: "caught-after-checkpoints", retries: 0, checkpointing: true },
  { event: "test/caught.after" },
  async ({ event, step }) => {
    const one = (name) => step.run(name, () => (bump("caught-after", name, event), name));
    const head = [await one("a"), await one("b")];
    let caught = null;
    try {
      await step.run("c", () => {
        bump("caught-after", "c", event);
        throw new Error("c fails for good");
      });
    } catch (err) {
      caught = String(err && err.message);
    }
    return { head, caught, tail: await one("d") };
  },
);

// Signals (tests/ts/test_ts_signals.py): a run waits for the signal its event names, and a
// step (or the client, POST /signal below) sends one.
const signalWaiter = createFunction({ id: "signal-waiter", retries: 0 }, { event: "test/signal.wait" }, async ({ event, step }) => {
  await step.run("before", () => (bump("signal-waiter", "before", event), "ready"));
  let got;
  try {
    got = await step.waitForSignal("wait-signal", {
      signal: event.data.signal,
      timeout: `${event.data.timeout_s ?? 60}s`,
      onConflict: event.data.on_conflict,
    });
  } catch (err) {
    return { conflict: String(err && err.message) };
  }
  await step.run("after", () => (bump("signal-waiter", "after", event), "done"));
  return { got };
});

const signalSender = createFunction({ id: "signal-sender" }, { event: "test/signal.send" }, async ({ event, step }) => {
  const sent = await step.sendSignal("send-signal", { signal: event.data.signal, data: event.data.payload });
  return { run_id: (sent && sent.runId) || null };
});

// A renamed copy (TS_APP_ID) serves the chain alone, on its own event (CHAIN_EVENT).
const functions = process.env.TS_APP_ID ? [chain] : [
  multiStep, sleeper, flaky, doomed, refuser, fanA, fanB, filtered, approval,
  child, parent, sender, parallel, cancellable, careful, patient, racer, chain, chainPlain, mixed,
  caughtAfterCheckpoints, signalWaiter, signalSender,
];
const handler = serve({ client: inngest, functions });

function reply(res, status, value) {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(value));
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8") || "null"));
      } catch (err) {
        reject(err);
      }
    });
    req.on("error", reject);
  });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, `http://${req.headers.host}`);
  if (url.pathname === "/api/inngest") return handler(req, res);
  if (req.method === "GET" && url.pathname === "/counters") return reply(res, 200, counts);
  if (req.method === "GET" && url.pathname === "/failures") return reply(res, 200, failures);
  if (req.method === "GET" && url.pathname === "/sdk") return reply(res, 200, { version: sdkVersion, major });
  if (req.method === "POST" && url.pathname === "/send") {
    // Send events with the SDK's own client (tests the SDK -> Event API path).
    try {
      const sent = await inngest.send(await readJson(req));
      return reply(res, 200, sent.ids);
    } catch (err) {
      return reply(res, 500, { error: String(err && err.message) });
    }
  }
  if (req.method === "POST" && url.pathname === "/signal") {
    // Send a signal with the SDK's own client: { run_id } of the run it resumed, or null.
    try {
      const { signal, data } = await readJson(req);
      const sent = await inngest.sendSignal({ signal, data });
      return reply(res, 200, { run_id: (sent && sent.runId) || null });
    } catch (err) {
      return reply(res, 500, { error: String(err && err.message) });
    }
  }
  return reply(res, 404, { error: `no route for ${req.method} ${url.pathname}` });
});

server.listen(port, "127.0.0.1", () => {
  console.log(`ts-app on inngest ${sdkVersion} listening on ${port}`);
});
