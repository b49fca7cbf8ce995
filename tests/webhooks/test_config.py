"""A source's configuration: refusals name the field, defaults per provider, nothing secret shown."""

from __future__ import annotations

import pytest

from stepline.webhooks.model import DEFAULT_REPLAY_WINDOW_S, Provider, SourceConfigError, parse_source

GOOD = {"source": "stripe", "provider": "stripe", "secret": "whsec_x"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"provider": "paypal"}, "provider"),
        ({"source": "Has Spaces"}, "source"),
        ({"source": ""}, "source"),
        ({"secret": None}, "secret"),
        ({"secret_id": "Stepline/webhooks/stripe"}, "secret"),  # both given
        ({"secret": "  "}, "secret"),
        ({"secret": None, "secret_id": "has spaces"}, "secret_id"),
        ({"replay_window_s": 0}, "replay_window_s"),
        ({"replay_window_s": 8 * 86400}, "replay_window_s"),
        ({"hmac": {"signature_header": "x-sig"}}, "hmac"),  # only for provider hmac
        ({"transform": {"cel": "event.body.type =="}}, "transform.cel"),
        ({"transform": {"cel": "1", "mapping": {"name": "a"}}}, "transform"),
        ({"transform": {"mapping": {"data": {"id": "$.id"}}}}, "transform.mapping"),
        ({"transform": {"mapping": {"name": "a", "data": {"id": "id"}}}}, "transform.mapping.data.id"),
        ({"transform": {"mapping": {"name_path": "$.a..b"}}}, "transform.mapping.name_path"),
        ({"colour": "red"}, "colour"),
        ({"origin": "deployment"}, "origin"),
    ],
)
def test_refusals_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(SourceConfigError) as caught:
        parse_source({**GOOD, **change})
    assert str(caught.value).startswith(f"{field}:"), str(caught.value)


def test_generic_scheme_header_names_are_checked() -> None:
    with pytest.raises(SourceConfigError, match=r"^hmac.signature_header:"):
        parse_source({"source": "a", "provider": "hmac", "secret": "s", "hmac": {"signature_header": "bad header"}})


def test_defaults_and_what_is_shown() -> None:
    src = parse_source(GOOD)
    assert src.window_s == DEFAULT_REPLAY_WINDOW_S[Provider.STRIPE] == 300
    assert parse_source({**GOOD, "provider": "github"}).window_s == 3 * 86400
    shown = src.public()
    assert shown["secret"] == "(set)" and "whsec_x" not in repr(shown) and "whsec_x" not in repr(src)
    assert shown["replay_window_s"] == 300 and shown["origin"] == "api"
    assert (
        parse_source({**GOOD, "secret": None, "secret_id": "S/webhooks/stripe"}).public()["secret_id"]
        == "S/webhooks/stripe"
    )
