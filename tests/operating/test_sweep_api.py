"""`POST /v1/sweep` and `stepline sweep` against a live `stepline dev`: a sweep of a healthy
server finds nothing and says so; bad input is a 400 naming the field. (That a sweep re-arms a
stalled run end to end is tests/e2e/test_sweeper.py; that the route needs the signing key when
deployed is test_auth.py.)"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import http
from tests.operating.test_cli import stepline


def test_a_sweep_of_a_healthy_server_finds_nothing(ops):
    code, reply = http("POST", f"{ops.url}/v1/sweep")
    assert code == 200, reply
    report = reply["data"]
    assert (report["found"], report["rearmed"], report["sent"], report["more"]) == (0, 0, {}, False)
    assert report["before"].endswith("Z")

    done = stepline(ops.url, "sweep")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("found 0 overdue runs; re-armed 0 runs")


@pytest.mark.parametrize("body, field", [
    ([], "body"),
    ({"grace_s": -1}, "grace_s"),
    ({"grace_s": "soon"}, "grace_s"),
    ({"grace_s": True}, "grace_s"),
    ({"max_runs": 0}, "max_runs"),
    ({"max_runs": 101}, "max_runs"),
    ({"max_runs": 2.5}, "max_runs"),
    ({"runs": 5}, "runs"),
])
def test_bad_input_is_a_400_naming_the_field(ops, body, field):
    code, reply = http("POST", f"{ops.url}/v1/sweep", body)
    assert code == 400, reply
    assert reply["error"].startswith(f"{field}:"), reply


def test_a_body_that_is_not_json_is_a_400(ops):
    code, reply = http("POST", f"{ops.url}/v1/sweep", raw=b"{grace")
    assert code == 400 and reply["error"].startswith("body: invalid JSON"), reply


def test_a_negative_grace_is_refused_by_the_cli(ops):
    done = stepline(ops.url, "sweep", "--grace", "-5")
    assert done.returncode == 1 and "--grace" in done.stderr
