"""The configuration store and the refusal counts, on both backends (SQLite, and DynamoDB on moto)."""

from __future__ import annotations

import pytest

from stepline.webhooks.counts import RejectionCounts
from stepline.webhooks.model import Origin, Rejection, deployed_sources, parse_source
from stepline.webhooks.sources import SourceReadOnly, WebhookSources


def test_sources_are_stored_replaced_listed_and_deleted(backend, clock):
    sources = WebhookSources(backend.flow_state, clock)
    assert sources.all() == [] and sources.get("stripe") is None
    assert sources.put(parse_source({"source": "stripe", "provider": "stripe", "secret": "whsec_1"})) is True
    assert sources.put(parse_source({"source": "gh", "provider": "github", "secret_id": "S/webhooks/gh"})) is True
    replaced = parse_source({"source": "stripe", "provider": "stripe", "secret": "whsec_2", "replay_window_s": 60})
    assert sources.put(replaced) is False
    # Another process (another API Lambda) reads what this one stored.
    other = WebhookSources(backend.flow_state, clock)
    assert other.get("stripe") == replaced and other.get("stripe").secret == "whsec_2"
    assert [s.source for s in other.all()] == ["gh", "stripe"]
    assert other.delete("stripe") is True and other.delete("stripe") is False
    assert [s.source for s in sources.all()] == ["gh"] and sources.get("stripe") is None


def test_deployed_sources_come_first_and_are_read_only(backend, clock):
    deployed = deployed_sources('[{"source": "shop", "provider": "shopify", "secret_id": "S/webhooks/shop"}]')
    sources = WebhookSources(backend.flow_state, clock, deployed)
    assert sources.get("shop").origin == Origin.DEPLOYMENT
    with pytest.raises(SourceReadOnly):
        sources.put(parse_source({"source": "shop", "provider": "github", "secret": "x"}))
    with pytest.raises(SourceReadOnly):
        sources.delete("shop")
    sources.put(parse_source({"source": "api-one", "provider": "hmac", "secret": "x"}))
    assert [(s.source, s.origin) for s in sources.all()] == [("api-one", Origin.API), ("shop", Origin.DEPLOYMENT)]


def test_deployed_sources_that_cannot_be_used_are_named():
    with pytest.raises(ValueError, match=r"webhook_sources\[1\] \(b\): provider:"):
        deployed_sources(
            '[{"source": "a", "provider": "github", "secret": "x"}, {"source": "b", "provider": "x", "secret": "y"}]'
        )
    with pytest.raises(ValueError, match="configured twice"):
        deployed_sources(
            '[{"source": "a", "provider": "github", "secret": "x"}, {"source": "a", "provider": "github", "secret": "y"}]'
        )


def test_rejections_are_counted_per_source_and_reason(backend, clock):
    counts = RejectionCounts(backend.flow_state, clock)
    for reason in (Rejection.UNSIGNED, Rejection.BAD_SIGNATURE, Rejection.BAD_SIGNATURE):
        counts.count("stripe", reason)
    counts.count("gh", Rejection.REPLAYED)
    assert counts.of("stripe") == {"unsigned": 1, "bad_signature": 2, "outside_window": 0, "replayed": 0}
    assert counts.of("gh")["replayed"] == 1 and sum(counts.of("nobody").values()) == 0
