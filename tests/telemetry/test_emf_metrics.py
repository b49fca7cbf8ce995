"""Deployed metrics: what the Lambdas print as CloudWatch embedded-metric-format lines after a run
that completes and one that fails (a whole engine on SQLite and a manual clock)."""

from __future__ import annotations

import json

from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.local import local_backend
from stepline.settings import Settings
from stepline.telemetry import Telemetry
from stepline.telemetry.metrics import EmfMetrics
from tests.engine.scripted_app import ScriptedApp, pump, register


def emf_lines(text: str) -> list[dict]:
    return [doc for doc in map(json.loads, filter(None, text.splitlines())) if "_aws" in doc]


def test_runs_and_steps_become_emf_metrics_per_function(tmp_path, clock, capsys):
    app = ScriptedApp({"good": [("run", "a"), ("run", "b")], "bad": [("run", "x")]})
    app.fail_first["x"] = HttpResponse(400, b'{"name": "Bad", "message": "no"}', {"x-inngest-no-retry": "true"})
    telemetry = Telemetry(clock, metrics=EmfMetrics(service="stepline-test"))
    with local_backend(str(tmp_path / "db"), clock) as backend:
        engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app, telemetry=telemetry)
        register(engine, ["good", "bad"])
        engine.ingest.accept([{"name": "app/good", "data": {}}, {"name": "app/bad", "data": {}}])
        pump(backend, engine, clock)
        capsys.readouterr()
        telemetry.flush()
    docs = {doc["FunctionId"]: doc for doc in emf_lines(capsys.readouterr().out)}
    assert set(docs) == {"good", "bad"}
    good, bad = docs["good"], docs["bad"]
    [directive] = good["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Stepline" and ["FunctionId", "service"] in directive["Dimensions"]
    assert good["service"] == "stepline-test"
    assert good["RunsStarted"] == [1.0] and good["RunsCompleted"] == [1.0] and "RunsFailed" not in good
    assert good["StepAttempts"] == [1.0, 1.0] and len(good["StepDuration"]) == 2
    assert bad["RunsStarted"] == [1.0] and bad["RunsFailed"] == [1.0]
