"""Fault injection for tests; never imported by ``stepline``.

* ``plan.FaultPlan``: seeded decisions and a tally of every fault injected.
* ``app_proxy.FaultyAppProxy``: a real HTTP proxy in front of a user's app that answers 500,
  hangs past the executor's timeout, closes the connection, or returns malformed, truncated or
  oversized bodies, before or after the app did the work.
* ``ports.FaultyBackend``: wraps a ``Backend``'s store, queue and timers; any write may fail
  before it applies, fail after it applied (the response was lost), or stop the executor there
  (an ``InjectedCrash`` between two writes); messages may be delivered twice or late.
* ``aws.install_aws_faults``: the same at the botocore level for the AWS adapters: throttling and
  internal errors, and writes retried after a lost response, which DynamoDB answers with a real
  ``ConditionalCheckFailedException``.
"""
