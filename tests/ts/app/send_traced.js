"use strict";

// Sends one event with the npm `inngest` SDK's `inngest.send()` from inside a span of an app
// traced the usual Node way: a NodeTracerProvider (W3C propagator, AsyncLocalStorage context)
// and the undici instrumentation, which traces Node's fetch and puts the span's traceparent on
// each request. The SDK itself adds no trace context to what it sends; this is how an app's
// context reaches Stepline. Prints {"ids", "sender", "request"}: the event ids, the span the
// event was sent from, and the HTTP client span that carried it (trace and span ids, hex).
// With --untraced-fetch the undici instrumentation is left out: the SDK's request then carries
// no context ("request" is null).
//
// Run: INNGEST_DEV=http://127.0.0.1:8288 node tests/ts/app/send_traced.js --sdk-dir tests/ts/v4 \
//        --event '{"name": "test/multi", "data": {}}'

const path = require("node:path");
const { createRequire } = require("node:module");

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`missing ${name}`);
  return process.argv[i + 1];
}

const sdkDir = path.resolve(arg("--sdk-dir"));
const sdkRequire = createRequire(path.join(sdkDir, "package.json"));
const { trace, SpanKind } = sdkRequire("@opentelemetry/api");
const { NodeTracerProvider } = sdkRequire("@opentelemetry/sdk-trace-node");
const { InMemorySpanExporter, SimpleSpanProcessor } = sdkRequire("@opentelemetry/sdk-trace-base");
const { registerInstrumentations } = sdkRequire("@opentelemetry/instrumentation");
const { UndiciInstrumentation } = sdkRequire("@opentelemetry/instrumentation-undici");

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();
if (!process.argv.includes("--untraced-fetch")) {
  registerInstrumentations({ tracerProvider: provider, instrumentations: [new UndiciInstrumentation()] });
}

// Required after the instrumentation is registered, as an instrumented app does.
const { Inngest } = sdkRequire("inngest");

async function main() {
  const inngest = new Inngest({ id: "ts-sender" });
  const tracer = provider.getTracer("ts-sender");
  const event = JSON.parse(arg("--event"));
  const [ids, sender] = await tracer.startActiveSpan("checkout", async (span) => {
    try {
      const sent = await inngest.send(event);
      return [sent.ids, span.spanContext()];
    } finally {
      span.end();
    }
  });
  const requests = exporter
    .getFinishedSpans()
    .filter((s) => s.kind === SpanKind.CLIENT && s.spanContext().traceId === sender.traceId);
  const request = requests.length ? requests[requests.length - 1].spanContext() : null;
  const ids_of = (c) => (c ? { trace_id: c.traceId, span_id: c.spanId } : null);
  process.stdout.write(JSON.stringify({ ids, sender: ids_of(sender), request: ids_of(request) }) + "\n");
  await provider.shutdown();
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});
