"""Deployed, the AWS clients are built at their first use: a cold Lambda builds only the clients
the request in hand needs (stepline.aws.LazyClient)."""

from __future__ import annotations

import threading

from stepline.aws import LazyClient, open_aws_backend


def test_a_backend_wired_from_names_alone_builds_each_client_at_its_first_use(aws, clock):
    names = aws.names
    backend = open_aws_backend(names, clock)
    clients = backend.clients
    try:
        assert {service: client.built for service, client in clients.items()} == {
            "dynamodb": False,
            "sqs": False,
            "scheduler": False,
            "s3": False,
        }
        assert backend.store.get_app("nobody") is None  # a read: DynamoDB only
        assert [s for s, c in clients.items() if c.built] == ["dynamodb"]
        backend.queue.send({"kind": "call", "run_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "step": "step", "attempt": 0})
        assert sorted(s for s, c in clients.items() if c.built) == ["dynamodb", "sqs"]
        # The message went to the real queue: the eagerly wired backend receives it.
        [message] = aws.queue.receive(1, 60)
        assert message.body["run_id"] == "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    finally:
        backend.close()
    # Closing does not build what was never used.
    assert not clients["scheduler"].built and not clients["s3"].built


def test_threads_that_first_use_a_client_together_share_one():
    built = []
    gate = threading.Barrier(8)

    def build(service: str):
        built.append(service)
        return object()

    client = LazyClient("sqs", build)
    seen = []

    def use():
        gate.wait()
        seen.append(client.client())

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert built == ["sqs"] and len({id(c) for c in seen}) == 1
