"""`stepline check` as a command: exit codes, the text and JSON outputs, and the sync warnings in
`stepline dev`'s output. Each command runs in its own process, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from stepline.cli import main
from tests.check.apps import bad_app
from tests.check.conftest import CHECK_IDS, ROOT, free_port

RESULT_KEYS = {"status", "function", "step", "location", "message", "fix", "reason"}
CHECK_KEYS = {"id", "title", "severity", "status", "reason", "results"}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "stepline.cli", *args]


@pytest.fixture(scope="module")
def runs(official_app):
    """Every command of this module, run side by side (each is a fresh interpreter)."""
    commands = {
        "good": _command("check", "tests/check/apps/good_app.py"),
        "bad-json": _command("check", "tests/check/apps/bad_app.py", "--format", "json"),
        "missing-json": _command("check", "tests/check/apps/missing_app.py", "--format", "json"),
        "official-url": _command("check", official_app.url, "--listen", str(official_app.register_port),
                                 "--format", "json"),
    }
    procs = {name: subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, cmd in commands.items()}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=60)
        out[name] = subprocess.CompletedProcess(commands[name], proc.returncode, stdout, stderr)
    return out


def _assert_shape(doc: dict) -> None:
    assert set(doc) == {"version", "target", "kind", "apps", "ok", "exit_code", "summary", "notes", "checks"}
    assert doc["version"] == 1
    assert [c["id"] for c in doc["checks"]] == CHECK_IDS
    for check in doc["checks"]:
        assert set(check) == CHECK_KEYS
        assert check["severity"] in ("CRITICAL", "ERROR", "WARNING")
        assert check["status"] in ("passed", "failed", "not_applicable")
        assert check["results"]
        for result in check["results"]:
            assert set(result) == RESULT_KEYS
            if result["status"] == "failed":
                assert result["fix"]
    summary = doc["summary"]
    assert summary["checks"] == 10
    assert summary["passed"] + summary["failed"] + summary["not_applicable"] == 10
    assert sum(summary["failed_by_severity"].values()) == summary["failed"]


def test_passing_app_exits_0_with_a_readable_list(runs):
    run = runs["good"]
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "stepline check tests/check/apps/good_app.py (module; check-good; 2 function(s))"
    for cid in CHECK_IDS:
        assert any(cid in line and "pass" in line for line in lines), cid
    assert lines[-1] == "failed: none; passed: 10; not applicable: 0 -> exit 0"


def test_failing_app_exits_1_with_json(runs):
    run = runs["bad-json"]
    assert run.returncode == 1, run.stderr
    doc = json.loads(run.stdout)
    _assert_shape(doc)
    assert doc["ok"] is False and doc["exit_code"] == 1 and doc["kind"] == "module" and doc["apps"] == ["check-bad"]
    assert doc["summary"]["failed_by_severity"] == {"CRITICAL": 1, "ERROR": 3, "WARNING": 5}
    by_id = {c["id"]: c for c in doc["checks"]}
    wait = by_id["wait-timeout"]
    assert wait["status"] == "failed" and wait["severity"] == "ERROR"
    [failure] = [r for r in wait["results"] if r["status"] == "failed"]
    assert failure["step"] == "wait-for-receipt" and failure["location"] == "tests/check/apps/bad_app.py:21"


def test_module_name_target(capsys):
    assert main(["check", "tests.check.apps.good_app", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    _assert_shape(doc)
    assert doc["ok"] is True and doc["target"] == "tests.check.apps.good_app"


def test_missing_file_exits_2_saying_why(runs):
    run = runs["missing-json"]
    assert run.returncode == 2
    assert json.loads(run.stdout) == {"version": 1, "target": "tests/check/apps/missing_app.py", "ok": False,
                                      "exit_code": 2, "error": "no such file: tests/check/apps/missing_app.py"}
    assert "stepline check: no such file" in run.stderr


def test_unreachable_url_exits_2(capsys):
    assert main(["check", f"http://127.0.0.1:{free_port()}/api/inngest"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "cannot reach http://127.0.0.1:" in captured.err


def test_official_sdk_url_exits_1(runs):
    run = runs["official-url"]
    assert run.returncode == 1, run.stderr
    doc = json.loads(run.stdout)
    _assert_shape(doc)
    assert doc["kind"] == "url" and doc["apps"] == ["check-official"]
    by_id = {c["id"]: c for c in doc["checks"]}
    assert by_id["payment-idempotency"]["status"] == "failed"
    assert by_id["step-names"] == {**by_id["step-names"], "status": "not_applicable", "reason": "needs source"}


def test_a_url_is_checked_with_nothing_else_running(official_app, runs):
    # The app registers where its INNGEST_DEV says (here, as in a shell that started it); nothing
    # listens there, so the checker receives the registration itself. (After `runs`, whose
    # --listen command uses the same port.)
    env = {**os.environ, "INNGEST_DEV": f"http://127.0.0.1:{official_app.register_port}"}
    done = subprocess.run(_command("check", official_app.url), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done.stderr  # the official app fails ERROR checks: read, not unreachable
    assert "Connection refused" not in done.stderr + done.stdout
    assert f"nothing listened at http://127.0.0.1:{official_app.register_port}" in " ".join(done.stdout.split())
    assert "check-official-refund-order" in done.stdout and "concurrency=[inngest.Concurrency(limit=10)]" in done.stdout


def test_bad_usage_exits_2(capsys):
    assert main(["check", "tests/check/apps/good_app.py", "--listen", "9"]) == 2
    assert "apply to URL targets only" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "tests/check/apps/good_app.py", "--format", "yaml"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'yaml'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "http://127.0.0.1:1/api/inngest", "--listen", "1", "--register-via", "http://127.0.0.1:2"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_stepline_dev_prints_sync_warnings(tmp_path, serve, monkeypatch):
    port = free_port()
    monkeypatch.setenv("INNGEST_DEV", f"http://127.0.0.1:{port}")
    app_url = serve(bad_app.app)
    env = {k: v for k, v in os.environ.items() if k != "INNGEST_DEV"}
    proc = subprocess.Popen(_command("dev", "--port", str(port), "--db", str(tmp_path / "dev.db"), "-u", app_url),
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "stepline.check" in line and "payment-idempotency" in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert seen.wait(20), "".join(lines)
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(5)
    [line] = [x for x in lines if "stepline.check" in x and "payment-idempotency" in x]
    assert " WARNING stepline.check: app 'check-bad' function 'check-bad-charge-customer': " in line
    assert proc.returncode == 0  # stopped cleanly on SIGTERM
