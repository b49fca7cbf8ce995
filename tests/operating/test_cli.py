"""`stepline send|runs|run|cancel|replay|tail`, run as a user would (a subprocess) against a live
`stepline dev`, and against a deployed-mode runtime with a signing key."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from datetime import datetime

import pytest

from stepline.cli_ops import missed_waits, waiting_on
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.protocol.signing import hash_signing_key
from stepline.settings import Settings
from tests.e2e.conftest import free_port, http
from tests.operating.harness import key

OPERATOR_KEY = "0a1b2c3d" * 8
SIGNING_KEY = "signkey-prod-00112233445566778899aabbccddeeff"


def stepline(url: str, *args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "stepline.cli", *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean, **(env or {})},
    )


def stepline_all(*calls: tuple[str, ...], env: dict | None = None) -> list[subprocess.CompletedProcess]:
    """Independent commands at once (each spends most of its time starting Python)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "stepline.cli", *args[1:], "--url", args[0]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**clean, **(env or {})},
        )
        for args in calls
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=30)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


@pytest.fixture(scope="module")
def pipeline(ops):
    """A pipeline run sent through the CLI when the module starts and read by a later test, so
    its second-long sleep and wait pass while the other tests run."""
    k = key()
    data = json.dumps({"key": k})
    [event_id] = ok(stepline(ops.url, "send", "ops/order.placed", data)).split()
    return k, event_id


def test_failures_say_what_is_wrong(ops, pipeline):
    dead = f"http://127.0.0.1:{free_port()}"
    unreachable, unknown, not_json, not_object = stepline_all(
        (dead, "runs"),
        (ops.url, "run", "01J0000000000000000000000X"),
        (ops.url, "send", "ops/steps", "{not json"),
        (ops.url, "send", "ops/steps", "[1]"),
    )
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr and "stepline dev" in unreachable.stderr
    assert unknown.returncode == 1 and "404" in unknown.stderr and "not found" in unknown.stderr
    assert not_json.returncode == 1 and "DATA: not JSON" in not_json.stderr
    assert not_object.returncode == 1 and "DATA: expected a JSON object" in not_object.stderr


def test_runs_lists_with_function_and_status_filters(ops):
    k = key()
    [event_id] = ok(stepline(ops.url, "send", "ops/steps", f'{{"key": "{k}"}}')).split()
    run_id = ops.wait_done(ops.run_of(event_id)["run_id"])["run_id"]
    out = ok(stepline(ops.url, "runs", "--function", "ops-app-steps", "--status", "Completed"))
    lines = out.splitlines()
    assert lines[0].split() == ["RUN", "STATUS", "FUNCTION", "EVENT", "STARTED", "TOOK"]
    assert any(line.startswith(run_id) for line in lines)
    assert all(line.split()[1:3] == ["Completed", "ops-app-steps"] for line in lines[1:])


def test_cancel_a_waiting_run(ops):
    k = key()
    [event_id] = ok(stepline(ops.url, "send", "ops/slow", f'{{"key": "{k}"}}')).split()
    run_id = ops.run_of(event_id)["run_id"]
    ops.wait_step(run_id, "long-nap", "Sleeping")
    assert "sleeping 'long-nap' until" in ok(stepline(ops.url, "run", run_id))

    assert ok(stepline(ops.url, "cancel", run_id)) == f"cancelled {run_id}\n"
    assert ops.run(run_id)["status"] == "Cancelled"
    # Cancelling is idempotent; a run that ended another way is left alone, and says so.
    assert ok(stepline(ops.url, "cancel", run_id)) == f"cancelled {run_id}\n"
    finished = ops.wait_done(ops.run_of(ops.send("ops/steps", {"key": k}))["run_id"])["run_id"]
    late = stepline(ops.url, "cancel", finished)
    assert late.returncode == 1 and late.stdout == f"{finished} had already ended: Completed\n"


def test_runs_json_prints_the_api_reply(ops):
    for _ in range(2):
        run_id = ops.wait_done(ops.run_of(ops.send("ops/steps", {"key": key()}))["run_id"])["run_id"]
    printed = json.loads(ok(stepline(ops.url, "runs", "--function", "ops-app-steps", "--limit", "1", "--json")))
    assert set(printed) == {"data", "metadata", "cursor"}
    assert [r["run_id"] for r in printed["data"]] == [run_id]
    # More runs of the function than the page holds: the cursor of the next page is printed too.
    assert printed["cursor"]


def test_dev_on_a_busy_port_says_so_in_one_line(ops, tmp_path):
    port = ops.url.rsplit(":", 1)[1]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "stepline.cli",
            "dev",
            "--port",
            port,
            "--db",
            str(tmp_path / "dev.db"),
            "--no-discovery",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"stepline dev: port {port} on 127.0.0.1 is in use (another stepline dev?): stop what listens there, "
        "or pass --port"
    ]


def test_replay_and_rerun_from_a_step(ops):
    k = key()
    [event_id] = ok(stepline(ops.url, "send", "ops/steps", f'{{"key": "{k}"}}')).split()
    original = ops.wait_done(ops.run_of(event_id)["run_id"])["run_id"]

    [replay] = ok(stepline(ops.url, "replay", original)).split()
    assert ops.wait_done(replay)["origin"] == {"kind": "replay", "run_id": original}
    [rerun] = ok(stepline(ops.url, "replay", original, "--from-step", "three")).split()
    done = ops.wait_done(rerun)
    assert done["status"] == "Completed" and done["origin"]["step_name"] == "three"
    # The original and the replay ran every step; the rerun only the last one.
    assert [ops.app.count("steps", s, k) for s in ("one", "two", "three")] == [2, 2, 3]
    assert f"origin    rerun of {original} from step three" in ok(stepline(ops.url, "run", rerun))
    wrong = stepline(ops.url, "replay", original, "--from-step", "four")
    assert wrong.returncode == 1 and "no step 'four'" in wrong.stderr and "one, two, three" in wrong.stderr


def test_a_rerun_shows_its_memoized_steps_at_the_time_they_first_ran(ops):
    original = ops.wait_done(ops.run_of(ops.send("ops/steps", {"key": key()}))["run_id"])
    [rerun] = ok(stepline(ops.url, "replay", original["run_id"], "--from-step", "three")).split()
    ops.wait_done(rerun)
    out = ok(stepline(ops.url, "run", rerun))
    assert "+-" not in out  # no offset before the run began
    rows = {line.split()[1]: line for line in out.splitlines() if line[:1].isdigit()}
    first_ran = {s["name"]: s["started_at"] for s in original["steps"]}
    for name in ("one", "two"):
        at = datetime.fromisoformat(first_ran[name].replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
        assert rows[name].split()[5] == at and rows[name].rstrip().endswith("memoized" + " " * 10 + "|"), rows[name]
    assert rows["three"].split()[5].startswith("+") and "=" in rows["three"]


def test_send_then_run_prints_the_step_timeline(ops, pipeline):
    k, event_id = pipeline
    run_id = ops.run_of(event_id)["run_id"]
    ops.wait_done(run_id)

    out = ok(stepline(ops.url, "run", run_id))
    assert f"run       {run_id}  Completed" in out
    assert "function  ops-app-pipeline" in out and f"event     ops/order.placed  {event_id}" in out
    rows = {line.split()[1]: line.split() for line in out.splitlines() if line[:1].isdigit()}
    assert list(rows) == [s["name"] for s in ops.run(run_id)["steps"]]
    assert rows["cool-down"][2:4] == ["sleep", "Completed"]
    assert rows["wait-receipt"][2:4] == ["wait", "Completed"]
    assert rows["charge"][2:5] == ["run", "Completed", "2"]  # two attempts
    bars = [re.search(r"\|[ =]+\|$", line) for line in out.splitlines() if line[:1].isdigit()]
    assert all(bar and "=" in bar.group() for bar in bars)  # a bar each, on one time scale
    assert '"charged":{"charged":2400}' in out  # the output


def test_tail_follows_runs_as_they_start_wait_and_finish(ops):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stepline.cli",
            "tail",
            "--url",
            ops.url,
            "--interval",
            "0.2",
            "--function",
            "ops-app-pipeline",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen: list[str] = []

    def until(predicate, timeout_s: float = 20.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"tail printed no such line; it printed: {seen}")

    try:
        until(lambda line: line.startswith("following runs on"))
        time.sleep(0.3)  # let tail take its first look before the run exists
        # A three-second sleep and a second-long wait: tail polls every 0.2 s, but one look at the
        # runs can take over a second on a loaded machine, and a shorter sleep was missed then.
        run_id = ops.run_of(ops.send("ops/order.placed", {"key": key(), "sleep_s": 3, "wait_s": 1}))["run_id"]
        until(lambda line: f"started    {run_id}" in line and "on ops/order.placed" in line)
        # Seen open ("sleeping ... until") when a look falls inside it, else named once it is over
        # ("slept ... for"): a look slower than the sleep must not lose it.
        until(
            lambda line: f"progress   {run_id}" in line and re.search(r"(sleeping|slept) 'cool-down' (until|for)", line)
        )
        until(
            lambda line: f"progress   {run_id}" in line and re.search(r"(waiting|waited) for 'ops/receipt.sent'", line)
        )
        done = until(lambda line: run_id in line and line.split()[1] in ("completed", "failed", "cancelled"))
        assert done.split()[1] == "completed" and "after" in done
    finally:
        proc.terminate()
        proc.wait(5)
    # Steps done are counted as the run goes.
    progress = [line for line in seen if f"progress   {run_id}" in line]
    counts = [int(line.split("  ")[-1].split()[0]) for line in progress]
    assert counts == sorted(counts) and counts[-1] >= 4


def test_tail_names_the_sleeps_and_waits_that_passed_between_two_looks(ops):
    # A run that slept and waited, seen only once it was over (as by a look slower than its sleep):
    # each sleep and wait is named, and not again once shown.
    run_id = ops.run_of(ops.send("ops/order.placed", {"key": key(), "sleep_s": 1, "wait_s": 1}))["run_id"]
    ops.wait_done(run_id)
    run = ops.run(run_id)
    shown: set[str] = set()
    missed = missed_waits(run, shown)
    assert [(s["kind"], s["name"]) for s in missed] == [("sleep", "cool-down"), ("wait", "wait-receipt")]
    line = waiting_on(run, missed)
    assert re.search(r"steps done, slept 'cool-down' for \d\.\ds; waited for 'ops/receipt.sent' for", line), line
    assert missed_waits(run, shown) == []


def test_tail_names_a_run_already_going_by_what_it_is_doing(ops):
    run_id = ops.run_of(ops.send("ops/slow", {"key": key()}))["run_id"]
    ops.wait_step(run_id, "long-nap", "Sleeping")
    try:
        out = ok(stepline(ops.url, "tail", "--function", "ops-app-slow", "--interval", "0.2", "--seconds", "1"))
    finally:
        http("DELETE", f"{ops.url}/v1/runs/{run_id}")
    [line] = [line for line in out.splitlines() if run_id in line]
    # Not "started": it began before tail looked, and is asleep now.
    assert line.split()[1:3] == ["sleeping", run_id]
    assert "1 step done, sleeping 'long-nap' until" in line


def test_tail_shows_at_once_what_a_run_new_since_its_last_look_already_does(ops):
    # A run that starts and falls asleep between two of tail's looks is "started" (new since the
    # last look) and already sleeping: its progress line must follow, not wait for a change.
    before = ops.run_of(ops.send("ops/slow", {"key": key()}))["run_id"]
    ops.wait_step(before, "long-nap", "Sleeping")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "stepline.cli", "tail", "--url", ops.url, "--interval", "3",
         "--seconds", "8", "--function", "ops-app-slow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean,
    )
    run_id = None
    try:
        # Its first look names the run already asleep: the next look is three seconds off.
        assert proc.stdout is not None
        for line in proc.stdout:
            if before in line:
                break
        run_id = ops.run_of(ops.send("ops/slow", {"key": key()}))["run_id"]
        ops.wait_step(run_id, "long-nap", "Sleeping")
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        for run in (before, run_id):
            if run is not None:
                http("DELETE", f"{ops.url}/v1/runs/{run}")
    lines = [line.split()[1] for line in out.splitlines() if run_id in line]
    assert lines == ["started", "progress"], (out, err)
    [progress] = [line for line in out.splitlines() if f"progress   {run_id}" in line]
    assert "1 step done, sleeping 'long-nap' until" in progress


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    settings = Settings(mode="cloud", event_keys=["evt"], signing_key=SIGNING_KEY, operator_key=OPERATOR_KEY)
    options = DevOptions(port=free_port(), db_path=str(tmp_path_factory.mktemp("cloud-cli") / "db"))
    runtime = DevRuntime(options, settings).start()
    yield runtime.url
    runtime.stop()


def test_a_deployed_api_takes_the_operator_key(cloud):
    refused, sent, by_app, bad = stepline_all(
        (cloud, "runs"),
        (cloud, "send", "ops/anything", "--operator-key", OPERATOR_KEY),
        (cloud, "send", "ops/anything", "--signing-key", SIGNING_KEY),
        (cloud, "runs", "--operator-key", "nothex"),
    )
    assert refused.returncode == 1 and "401" in refused.stderr and "--operator-key" in refused.stderr
    # The apps' signing key reads, but does not steer: sending by bearer is an operator's route.
    assert by_app.returncode == 1 and "403" in by_app.stderr and "operator key" in by_app.stderr
    assert bad.returncode == 1 and "must be hex" in bad.stderr
    assert ok(stepline(cloud, "runs", "--status", "Failed", env={"STEPLINE_OPERATOR_KEY": OPERATOR_KEY})) == "no runs\n"
    assert ok(stepline(cloud, "runs", "--status", "Failed", env={"STEPLINE_SIGNING_KEY": SIGNING_KEY})) == "no runs\n"
    [event_id] = ok(sent).split()
    code, body = http(
        "GET", f"{cloud}/v1/events/{event_id}", headers={"Authorization": f"Bearer {hash_signing_key(SIGNING_KEY)}"}
    )
    assert code == 200 and body["data"]["name"] == "ops/anything"
