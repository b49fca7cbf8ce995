// The benchmark's app on the official TypeScript SDK (4.x, from tests/ts/v4): one function of N
// sequential steps, each returning a small value, checkpointed (4.x's default) and with
// checkpointing off. Run: node bench/ts_app.js --port 3000 --sdk-dir tests/ts/v4
"use strict";

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

const inngest = new Inngest({ id: "bench-ts" });
const chain = async ({ event, step }) => {
  let total = 0;
  for (let i = 0; i < (event.data.steps ?? 100); i++) total += await step.run(`step-${i}`, () => i);
  return total;
};
const functions = [
  inngest.createFunction({ id: "checkpointed", retries: 0, triggers: [{ event: "bench/ts.checkpointed" }] }, chain),
  inngest.createFunction(
    { id: "per-step", retries: 0, checkpointing: false, triggers: [{ event: "bench/ts.per-step" }] },
    chain,
  ),
];
const handler = serve({ client: inngest, functions });
http.createServer(handler).listen(Number(arg("--port")), "127.0.0.1");
