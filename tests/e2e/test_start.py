"""`stepline start`, the command: it refuses to start without keys (one line saying which, a
non-zero exit, nothing created), takes its keys from flags, a keys file or the environment in
that order of precedence, says where its state lives and never prints a key. What it enforces
once running is tested in test_deployed_auth.py and tests/security/ (the `start` variant)."""

from __future__ import annotations

import os
import socket

import pytest

from stepline.cli import main
from stepline.protocol.signing import hash_signing_key
from tests.e2e.conftest import http
from tests.e2e.started import StartedStepline, run_start

SIGNING_KEY = "signkey-test-" + "5a" * 32
OTHER_SIGNING_KEY = "signkey-test-" + "c4" * 32


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {hash_signing_key(key)}"}


@pytest.mark.parametrize(
    "args, env, fragment",
    [
        ([], {}, "no signing key: pass --signing-key, set STEPLINE_SIGNING_KEY, or put it in a file"),
        (["--signing-key", SIGNING_KEY], {}, "no event key: pass --event-key, set STEPLINE_EVENT_KEYS"),
        ([], {"STEPLINE_EVENT_KEYS": "evt-1"}, "no signing key"),
        ([], {"STEPLINE_SIGNING_KEY": SIGNING_KEY, "STEPLINE_EVENT_KEYS": " , "}, "no event key"),
        (["--signing-key", "signkey-test-not-hex", "--event-key", "e"], {},
         "STEPLINE_SIGNING_KEY (from flag): signing key: the part after 'signkey-<env>-' must be hex"),
        (["--signing-key", SIGNING_KEY, "--signing-key-fallback", SIGNING_KEY, "--event-key", "e"], {},
         "STEPLINE_SIGNING_KEY_FALLBACK is the signing key itself"),
        (["--keys-file", "/nonexistent/keys.env"], {}, "keys file /nonexistent/keys.env: No such file or directory"),
    ],
    ids=["nothing", "no-event-key", "env-event-key-only", "blank-event-keys", "malformed-key", "fallback-same",
         "missing-file"],
)
def test_it_refuses_to_start_without_usable_keys(tmp_path, monkeypatch, capsys, args, env, fragment):
    # In this process, through the command's own entry point (the next test runs the real one).
    for name in [n for n in os.environ if n.startswith("STEPLINE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    db = tmp_path / "state" / "stepline.db"
    assert main(["start", "--port", "1", "--db", str(db), *args]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stepline start: ") and fragment in lines[0], err
    assert out == ""
    assert not db.parent.exists()  # nothing created, not even the state directory
    assert "5a5a" not in err  # a key is never echoed


def test_the_command_exits_non_zero_with_one_line(tmp_path):
    db = tmp_path / "state" / "stepline.db"
    result = run_start(["--db", str(db), "--event-key", "evt-1"], {})
    assert result.returncode == 2, result
    assert result.stderr == (
        "stepline start: no signing key: pass --signing-key, set STEPLINE_SIGNING_KEY, "
        "or put it in a file given with --keys-file\n"
    )
    assert result.stdout == "" and not db.parent.exists()


def test_a_keys_file_line_that_is_not_a_key_is_refused_without_echoing_it(tmp_path, capsys):
    keys = tmp_path / "keys.env"
    keys.write_text(f"STEPLINE_SIGNING_KEY={SIGNING_KEY}\nSIGNING_KEY={OTHER_SIGNING_KEY}\n")
    assert main(["start", "--keys-file", str(keys), "--db", str(tmp_path / "db")]) == 2
    err = capsys.readouterr().err
    assert f"keys file {keys}, line 2: expected NAME=value" in err
    assert "c4c4" not in err and "5a5a" not in err


def test_it_reports_where_its_state_lives_and_never_prints_a_key(tmp_path):
    db = tmp_path / "var" / "stepline.db"
    started = StartedStepline(db, ["--signing-key", SIGNING_KEY, "--event-key", "evt-secret-1",
                                   "--event-key", "evt-secret-2"])
    try:
        status, body = http("GET", f"{started.url}/health")
        assert status == 200 and body == {"status": "ok", "mode": "cloud"}
    finally:
        assert started.stop() == 0
    output = "\n".join(started.lines)
    assert f"stepline start: state in {db} (SQLite)" in output
    assert "stepline start: 2 event key(s); keys from flag" in output
    assert db.exists()
    for secret in ("5a5a", "evt-secret", hash_signing_key(SIGNING_KEY)[:16]):
        assert secret not in output


def test_flags_beat_the_keys_file_which_beats_the_environment(tmp_path):
    keys = tmp_path / "keys.env"
    keys.write_text(f"# rotated on Monday\nSTEPLINE_SIGNING_KEY={OTHER_SIGNING_KEY}\n"
                    "export STEPLINE_EVENT_KEYS='evt-file-1, evt-file-2'\n")
    os.chmod(keys, 0o600)
    env = {"STEPLINE_SIGNING_KEY": "signkey-test-" + "99" * 32, "STEPLINE_EVENT_KEYS": "evt-env"}
    # The signing key from the file (over the environment), the event keys from the flag (over both).
    started = StartedStepline(tmp_path / "stepline.db", ["--keys-file", str(keys), "--event-key", "evt-flag"], env)
    try:
        assert http("POST", f"{started.url}/e/evt-flag", {"name": "start/x"})[0] == 200
        for refused in ("evt-file-1", "evt-env"):
            assert http("POST", f"{started.url}/e/{refused}", {"name": "start/x"})[0] == 401
        assert http("GET", f"{started.url}/v1/events", headers=bearer(OTHER_SIGNING_KEY))[0] == 200
        assert http("GET", f"{started.url}/v1/events", headers=bearer(env["STEPLINE_SIGNING_KEY"]))[0] == 401
    finally:
        started.stop()
    assert f"keys from file {keys}, flag" in "\n".join(started.lines)


def test_keys_from_the_environment_alone(tmp_path):
    env = {"STEPLINE_SIGNING_KEY": SIGNING_KEY, "STEPLINE_SIGNING_KEY_FALLBACK": OTHER_SIGNING_KEY,
           "STEPLINE_EVENT_KEYS": "evt-a,evt-b"}
    started = StartedStepline(tmp_path / "stepline.db", [], env)
    try:
        assert http("POST", f"{started.url}/e/evt-b", {"name": "start/x"})[0] == 200
        assert http("POST", f"{started.url}/e/evt-c", {"name": "start/x"})[0] == 401
        # Both the key and the fallback of a rotation are taken.
        assert http("GET", f"{started.url}/v1/events", headers=bearer(OTHER_SIGNING_KEY))[0] == 200
        assert http("GET", f"{started.url}/v1/events")[0] == 401
    finally:
        started.stop()
    assert "2 event key(s), a fallback signing key; keys from environment" in "\n".join(started.lines)


def test_a_busy_port_is_said_in_one_line(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = run_start(["--port", str(port), "--db", str(tmp_path / "stepline.db"),
                            "--signing-key", SIGNING_KEY, "--event-key", "evt-1"], {})
    assert result.returncode == 1, result
    assert result.stderr.strip().splitlines() == [
        f"stepline start: port {port} on 127.0.0.1 is in use (another stepline start?): stop what listens there, "
        "or pass --port"
    ]
