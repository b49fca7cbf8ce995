"""An app on the official Python SDK whose functions call a model through `step.ai.infer`, for
the AI gateway tests. The model's API is a fake provider whose address comes from
FAKE_PROVIDER_URL; the function's event says which adapter and which path the test scripted.

    INNGEST_DEV=http://127.0.0.1:8288 FAKE_PROVIDER_URL=http://127.0.0.1:9000 python tests/e2e/ai_app.py --port 3000
"""

from __future__ import annotations

import argparse
import os

import flask
import inngest
import inngest.flask
from inngest.experimental import ai

APP_ID = "ai-app"
PROVIDER = os.environ.get("FAKE_PROVIDER_URL", "http://127.0.0.1:9")
ANTHROPIC_KEY = "sk-ant-test-000000"
OPENAI_KEY = "sk-openai-test-111111"

client = inngest.Inngest(app_id=APP_ID, logger=None)


def adapter(ctx: inngest.ContextSync) -> ai.BaseAdapter:
    # Each test gets its own path on the fake provider, so its script answers only that test.
    base = f"{PROVIDER}/{ctx.event.data['script']}/v1"
    if ctx.event.data.get("adapter") == "openai":
        return ai.openai.Adapter(auth_key=OPENAI_KEY, base_url=base, model="gpt-4o-mini")
    return ai.anthropic.Adapter(
        auth_key=ANTHROPIC_KEY, base_url=base, headers={"x-my-header": "my-value"}, model="claude-3-5-sonnet-latest"
    )


@client.create_function(fn_id="ask-model", trigger=inngest.TriggerEvent(event="ai/ask"), retries=2)
def ask_model(ctx: inngest.ContextSync) -> dict:
    body = {"messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 100}
    try:
        answer = ctx.step.ai.infer("ask", adapter=adapter(ctx), body=body)
    except inngest.StepError as err:
        return {"error_name": err.name, "error": err.message}
    after = ctx.step.run("after", lambda: "after the model")
    return {"answer": answer, "after": after}


app = flask.Flask(__name__)
inngest.flask.serve(app, client, [ask_model])

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    app.run(host="127.0.0.1", port=parser.parse_args().port, threaded=True)
