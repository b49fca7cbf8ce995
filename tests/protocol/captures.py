"""Wire captures of the official SDKs (docs/protocol.md §4.1, §6.5, §11, §16), kept verbatim apart from trimming."""

from __future__ import annotations

import json

PY_REGISTER = {
    "appname": "lab-app",
    "appVersion": "v-test-1",
    "capabilities": {"connect": "v1", "in_band_sync": "v1", "trust_probe": "v1"},
    "deploy_type": "ping",
    "framework": "flask",
    "functions": [
        {"id": "lab-app-run-steps", "name": "run-steps",
         "steps": {"step": {"id": "step", "name": "step",
                            "runtime": {"type": "http", "url": "http://127.0.0.1:8939/api/inngest?fnId=lab-app-run-steps&stepId=step"}}},
         "triggers": [{"event": "app/run"}]},
        {"cancel": [{"event": "app/cancel", "if": "event.data.id == async.data.id", "timeout": "1h"}],
         "concurrency": [{"key": "event.data.user_id", "limit": 2, "scope": "fn"}, {"limit": 10}],
         "id": "lab-app-configured",
         "idempotency": "event.data.order_id",
         "name": "Configured Function",
         "priority": {"run": "event.data.priority"},
         "rateLimit": {"key": "event.data.user_id", "limit": 10, "period": "1m"},
         "steps": {"step": {"id": "step", "name": "step", "retries": {"attempts": 5},
                            "runtime": {"type": "http", "url": "http://127.0.0.1:8939/api/inngest?fnId=lab-app-configured&stepId=step"}}},
         "throttle": {"key": "event.data.user_id", "limit": 5, "period": "10s", "burst": 2},
         "timeouts": {"start": "30s", "finish": "5m"},
         "singleton": {"key": "event.data.user_id", "mode": "skip"},
         "triggers": [{"event": "app/configured", "expression": "event.data.ok == true"},
                      {"cron": "TZ=Europe/Paris 0 9 * * 1"}]},
        {"cancel": [], "concurrency": [], "id": "lab-app-configured-failure",
         "name": "Configured Function (failure)",
         "steps": {"step": {"id": "step", "name": "step", "retries": {"attempts": 0},
                            "runtime": {"type": "http", "url": "http://127.0.0.1:8939/api/inngest?fnId=lab-app-configured-failure&stepId=step"}}},
         "triggers": [{"event": "inngest/function.failed",
                       "expression": "event.data.function_id == 'lab-app-configured'"}]},
    ],
    "sdk": "py:v0.5.19",
    "url": "http://127.0.0.1:8939/api/inngest",
    "v": "0.1",
}

PY_BATCHED = {"batchEvents": {"maxSize": 50, "timeout": "5s", "key": "event.data.user_id"}, "id": "lab-app-batched"}
PY_DEBOUNCED = {"debounce": {"key": "event.data.user_id", "period": "10s", "timeout": "2m"}, "id": "lab-app-debounced"}

# TS top level as captured; TS function entries have the Python shape with other key orders,
# `cancel[].timeout` before `if`, deployId left in the step URLs, and 1 retry on failure handlers.
TS_REGISTER = {
    "url": "http://127.0.0.1:8942/api/inngest?deployId=dep-ts4", "deployType": "ping", "framework": "nodejs",
    "appName": "lab-app", "sdk": "js:v4.24.0", "v": "0.1", "deployId": "dep-ts4",
    "capabilities": {"trust_probe": "v1", "connect": "v1"}, "appVersion": "v-test-1",
    "featureObservations": {"...": "v4 only, telemetry; ignore"},
    "functions": [
        {"id": "lab-app-configured", "name": "Configured Function",
         "triggers": [{"event": "app/configured", "expression": "event.data.ok == true"}],
         "steps": {"step": {"id": "step", "name": "step",
                            "runtime": {"type": "http", "url": "http://127.0.0.1:8942/api/inngest?fnId=lab-app-configured&stepId=step&deployId=dep-ts4"},
                            "retries": {"attempts": 5}}},
         "cancel": [{"event": "app/cancel", "timeout": "1h", "if": "event.data.id == async.data.id"}],
         "rateLimit": {"limit": 10, "period": "1m", "key": "event.data.user_id"},
         "timeouts": {"start": "30s", "finish": "5m"}},
        {"id": "lab-app-configured-failure", "name": "Configured Function (failure)",
         "triggers": [{"event": "inngest/function.failed",
                       "expression": "event.data.function_id == 'lab-app-configured'"}],
         "steps": {"step": {"id": "step", "name": "step",
                            "runtime": {"type": "http", "url": "http://127.0.0.1:8942/api/inngest?fnId=lab-app-configured-failure&stepId=step&deployId=dep-ts4"},
                            "retries": {"attempts": 1}}}},
        {"id": "lab-app-child", "name": "child", "triggers": [],
         "steps": {"step": {"id": "step", "name": "step",
                            "runtime": {"type": "http", "url": "http://127.0.0.1:8942/api/inngest?deployId=dep-ts4&fnId=lab-app-child&stepId=step"}}}},
    ],
}

# §6.5 opcode responses.
PY_STEP_RUN = """[{"displayName": "a", "id": "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8", "name": "a", "op": "StepRun",
  "opts": null, "userland": {"id": "a", "index": null}, "data": {"a": 1}}]"""
TS_STEP_RUN = """[{"id": "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8", "op": "StepRun", "name": "a", "opts": {}, "displayName": "a",
  "userland": {"id": "a"}, "data": {"a": 1}, "timing": {"a": 1795383049986000000, "b": 0}}]"""
STEP_PLANNED = """[{"displayName": "a", "id": "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8", "name": "a", "op": "StepPlanned", "opts": null, "userland": {"id": "a", "index": null}, "data": null}]"""
PY_WAIT_IF = """[{"displayName": "wait-approval", "id": "df213fbba68cded20d69d058d0047d7233586642", "name": "app/approved", "op": "WaitForEvent",
  "opts": {"if": "event.data.id == async.data.id", "timeout": "1m"}, "userland": {"id": "wait-approval", "index": null}, "data": null}]"""
PY_WAIT_PLAIN = """[{"displayName": "wait-plain", "id": "8c7f2fac4af0bcd14f0bd8487eb8f7c327105672", "name": "app/other", "op": "WaitForEvent",
  "opts": {"if": null, "timeout": "1m"}, "userland": {"id": "wait-plain", "index": null}, "data": null}]"""
TS_WAIT_PLAIN = """[{"displayName": "wait-plain", "op": "WaitForEvent", "id": "8c7f2fac4af0bcd14f0bd8487eb8f7c327105672", "name": "app/other",
  "opts": {"timeout": "1m"}, "userland": {"id": "wait-plain"}, "data": null}]"""
PY_INVOKE = """[{"displayName": "call-child", "id": "93f72581df96e9a8f01f1481b3570b4e9370a0a6", "name": "call-child", "op": "InvokeFunction",
  "opts": {"function_id": "lab-app-child", "payload": {"data": {"hello": "world"}, "v": null}, "timeout": "5m"},
  "userland": {"id": "call-child", "index": null}, "data": null}]"""
TS_INVOKE = """[{"displayName": "call-child", "op": "InvokeFunction", "id": "93f72581df96e9a8f01f1481b3570b4e9370a0a6",
  "opts": {"payload": {"data": {"hello": "world"}}, "function_id": "lab-app-child", "timeout": "5m"},
  "userland": {"id": "call-child"}, "data": null}]"""
PY_SEND_EVENT = """[{"displayName": "send-it", "id": "5cebd8c5d37b62f215b8c2df6df03b6d391aabda", "name": "send-it", "op": "StepRun", "opts": null,
  "userland": {"id": "send-it", "index": null}, "data": ["16e1a98d50a549b6bc370e17f372d480", "my-fixed-id"]}]"""
TS_SEND_EVENT = """[{"id": "5cebd8c5d37b62f215b8c2df6df03b6d391aabda", "op": "StepRun", "name": "sendEvent", "opts": {"type": "step.sendEvent"},
  "displayName": "send-it", "userland": {"id": "send-it"}, "data": {"ids": ["aa1700c42ac5485e99fd0e1c70c45ce4", "my-fixed-id"]}, "timing": {"a": 1, "b": 2}}]"""
PY_STEP_ERROR = """[{"displayName": "boom", "id": "c53d2f1a9a8499bcb477be56c31caa5c76ae60f5", "name": "boom", "op": "StepError", "opts": null,
  "userland": {"id": "boom", "index": null},
  "error": {"code": "unknown", "message": "step went boom", "name": "ValueError", "stack": "Traceback (most recent call last): ..."},
  "data": null}]"""
TS_STEP_FAILED = """[{"id": "c53d2f1a9a8499bcb477be56c31caa5c76ae60f5", "op": "StepFailed", "name": "boom", "opts": {}, "displayName": "boom",
  "userland": {"id": "boom"}, "error": {"name": "Error", "message": "step went boom", "stack": "Error: step went boom\\n ...", "__serialized": true},
  "timing": {"a": 1, "b": 2}, "data": {"__serialized": true, "name": "Error", "message": "step went boom", "stack": ""}}]"""
PY_NESTED = """[{"displayName": "outer", "id": "b1417920698f32a6d3e9b074a0dce5def3f415b9", "name": "outer", "op": "StepError", "opts": null,
  "userland": {"id": "outer", "index": null},
  "error": {"code": "step_nested", "message": "Nested steps are not supported.", "name": "CodedError", "stack": "..."}, "data": null}]"""
PY_SLEEP = """[{"displayName": "nap", "id": "e1223dc21ff30cf04c0a4e4819827447ba67a40c", "name": "2026-11-22T21:27:17.065Z", "op": "Sleep", "opts": null,
  "userland": {"id": "nap", "index": null}, "data": null}]"""
TS_SLEEP = """[{"id": "e1223dc21ff30cf04c0a4e4819827447ba67a40c", "op": "Sleep", "name": "30s", "opts": {}, "displayName": "nap", "userland": {"id": "nap"}}]"""
PARALLEL = """[{"displayName": "p1", "id": "b78f576611ec06f96af3ca654c22172a5d746c40", "name": "p1", "op": "StepPlanned", "opts": null, "data": null},
 {"displayName": "p2", "id": "c5fd961c9f737a955a308050062e7a2c34ee67c3", "name": "p2", "op": "StepPlanned", "opts": null, "data": null},
 {"displayName": "p-sleep", "id": "e1223dc21ff30cf04c0a4e4819827447ba67a40c", "name": "2026-11-22T21:27:02.142Z", "op": "Sleep", "opts": null, "data": null}]"""

# §6.5 function-level error bodies.
PY_FN_ERROR = {"code": "unknown", "message": "function level boom", "name": "RuntimeError", "stack": "Traceback ..."}
PY_NON_RETRIABLE = {"code": "non_retriable_error", "message": "do not retry me", "name": "NonRetriableError", "stack": "..."}
PY_RETRY_AFTER = {"code": "retry_after_error", "message": "later please", "name": "RetryAfterError", "stack": "..."}
TS_NON_RETRIABLE = {"name": "NonRetriableError", "message": "do not retry me", "stack": "...", "__serialized": True}
TS_STEP_NOT_FOUND = {
    "error": "Could not find step \"0000\" to run; timed out. Found new steps: \nfirst (e0996a37...).",
    "requestedStep": "0000000000000000000000000000000000000000",
    "foundSteps": [{"id": "e0996a37c13d44c3b06074939d43fa3759bd32c1", "name": "first", "displayName": "first"}],
    "totalFoundSteps": 1,
}
PY_STEP_UNEXPECTED = {"code": "step_unexpected", "message": "found step \"first\" when targeting a different step",
                      "name": "StepUnexpectedError", "stack": None}

# §11 / §16: the Python and TS event send body.
EVENT_SEND = b'[{"data":{"x":1},"name":"app/one","ts":1795382807469},{"data":{"y":2},"id":"my-fixed-id","name":"app/two","ts":1700000000000}]'

# §3.1: the spec's signing key example, confirmed by captures.
SIGNING_KEY = "signkey-prod-12345678"
SIGNING_KEY_HASH = "b2ed992186a5cb19f6668aade821f502c1d00970dfd0e35128d51bac4649916c"
PY_BEARER = f"Bearer {SIGNING_KEY_HASH}"
TS_BEARER = f"Bearer signkey-test-{SIGNING_KEY_HASH}"

# §5.2: the call-request body our server must send, JCS-ordered.
CALL_REQUEST_SAMPLE = {
    "ctx": {
        "attempt": 0,
        "disable_immediate_execution": False,
        "env": "",
        "max_attempts": 4,
        "qi_id": "",
        "run_id": "01HRUN0000000000000000000A",
        "stack": {"current": 1, "stack": ["86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"]},
        "step_id": "step",
        "use_api": False,
    },
    "event": {"data": {"k": "v"}, "id": "01HEVT0000000000000000000A", "name": "app/run", "ts": 1700000000000, "user": {}},
    "events": [{"data": {"k": "v"}, "id": "01HEVT0000000000000000000A", "name": "app/run", "ts": 1700000000000, "user": {}}],
    "steps": {"86f7e437faa5a7fce15d1ddcb9eaeaea377667b8": {"data": {"a": 1}}},
    "use_api": False,
    "version": -1,
}


def dumps(obj: object) -> bytes:
    return json.dumps(obj).encode()
