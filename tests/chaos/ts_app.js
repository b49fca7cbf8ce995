// The chaos workload's TypeScript checkpointing shape: an app on the official TypeScript SDK 4.x
// (tests/ts/v4), whose calls run steps inline and store each through /v1/checkpoint.
//
// As in tests/chaos/app.py, every successful step body returns a fresh nonce and records it,
// keyed by (run id, step name); GET /ledger returns the records.
//
// Run: INNGEST_DEV=http://127.0.0.1:8288 node tests/chaos/ts_app.js --port 8292 --sdk-dir tests/ts/v4
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");
const path = require("node:path");
const { createRequire } = require("node:module");

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`missing ${name}`);
  return process.argv[i + 1];
}

const sdkRequire = createRequire(path.join(path.resolve(arg("--sdk-dir")), "package.json"));
const { Inngest } = sdkRequire("inngest");
const { serve } = sdkRequire("inngest/node");

const inngest = new Inngest({ id: "chaos-ts" });
const ledger = {};
const failed = new Set();

function effect(runId, step, flaky) {
  return () => {
    const key = `${runId}/${step}`;
    if (flaky && !failed.has(key)) {
      failed.add(key);
      throw new Error("first attempt fails on purpose");
    }
    const nonce = `n-${crypto.randomBytes(16).toString("hex")}`;
    (ledger[key] = ledger[key] || []).push(nonce);
    return nonce;
  };
}

const checkpointed = inngest.createFunction(
  { id: "chaos-ts-checkpointed", retries: 10, triggers: [{ event: "chaos/ts-checkpointed" }] },
  async ({ event, step, runId }) => {
    const out = {};
    for (const name of ["a", "b", "c"]) out[name] = await step.run(name, effect(runId, name, false));
    out.d = await step.run("d", effect(runId, "d", Boolean(event.data.flaky)));
    await step.sleep("nap", "1s");
    for (const name of ["e", "f"]) out[name] = await step.run(name, effect(runId, name, false));
    return out;
  },
);

const handler = serve({ client: inngest, functions: [checkpointed] });
http
  .createServer((req, res) => {
    if (req.method === "GET" && req.url === "/ledger") {
      res.writeHead(200, { "Content-Type": "application/json" });
      return res.end(JSON.stringify(ledger));
    }
    return handler(req, res);
  })
  .listen(Number(arg("--port")), "127.0.0.1");
