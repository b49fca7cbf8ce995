"""One Lambda execution environment for bench/lambdas.py: a process that imports a handler module,
then invokes its ``handler`` once per line of JSON it reads, and reports the CPU and wall time of
the import and of each invocation, and its peak memory so far.

Nothing but the standard library is imported before the handler, so the import figure is the
handler's alone. Protocol: one JSON object per line each way, requests on stdin, replies on the
descriptor given (stdout is handed to stderr, where powertools prints its logs and metrics).
Run as a script with -P, so that no module of bench/ can shadow one the handler imports:

    python -P bench/lambda_host.py stepline.handlers.executor 3
"""

from __future__ import annotations

import time

STARTED_CPU = time.process_time()  # the interpreter's start-up, up to here

import importlib  # noqa: E402 - after the clock reading on purpose
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass  # noqa: E402


@dataclass
class LambdaContext:
    """What powertools reads of the Lambda context."""

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:stepline-bench"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def main() -> None:
    module_name, out_fd = sys.argv[1], int(sys.argv[2])
    out = os.fdopen(out_fd, "w", buffering=1)
    os.dup2(2, 1)  # the handler's prints (logs, metrics) go to stderr
    wall, cpu = time.perf_counter(), time.process_time()
    module = importlib.import_module(module_name)
    import_wall, import_cpu = time.perf_counter() - wall, time.process_time() - cpu
    report = {"interpreter_cpu_ms": STARTED_CPU * 1000, "import_cpu_ms": import_cpu * 1000}
    out.write(json.dumps({**report, "import_wall_ms": import_wall * 1000}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("trace_id"):
            # What Lambda sets per invocation when it traces it.
            os.environ["_X_AMZN_TRACE_ID"] = f"Root={request['trace_id']};Parent=53995c3f42cd8ad8;Sampled=1"
        context = LambdaContext(function_name=module_name, aws_request_id=str(uuid.uuid4()))
        wall, cpu = time.perf_counter(), time.process_time()
        result = module.handler(request["event"], context)
        elapsed = {"wall_ms": (time.perf_counter() - wall) * 1000, "cpu_ms": (time.process_time() - cpu) * 1000}
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        out.write(json.dumps({"result": result, **elapsed, "peak_rss_mb": peak_mb}) + "\n")


if __name__ == "__main__":
    main()
