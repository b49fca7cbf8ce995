"""Bearer auth for the API routes (docs/protocol.md §3.4; who may call what: docs/security.md).

Two credentials, each sent as the SHA-256 of its hex (the form the SDKs send the signing key in):

* ``Access.APP``: what an app holding the signing key does through the SDKs (``/fn/register``,
  the ``/v0`` routes of ``use_api``) and the Inngest REST API's reads (events, runs, apps,
  functions). The signing key, its fallback, or the operator key.
* ``Access.OPERATOR``: everything that steers runs or shows the runtime's insides (cancel, bulk
  cancel, replay, rerun, invoke, dead letters, sweep, erase, sync, sending events by bearer,
  metrics): the
  operator key only. The signing key is refused there with a 403 that says so, so an app (or a
  leak of the key apps share) can never cancel, replay or erase anything.

Keys come from the engine's key ring on every request, so a rotated or revoked key stops working
as soon as the ring re-reads it. Dev mode runs without auth, as Inngest's dev server does: the
SDKs send no bearer there, or a junk one (`Bearer undefined`).
"""

from __future__ import annotations

from enum import Enum

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from stepline.api.errors import ApiError
from stepline.api.request import header
from stepline.engine.core import Engine
from stepline.protocol.signing import bearer_matches


class Access(str, Enum):
    APP = "app"
    OPERATOR = "operator"


# Every route that takes the operator key only, as (method, path as OpenAPI writes it). Their
# handlers check it (``require_operator``), the OpenAPI document marks them, and the stack routes
# and throttles them apart from the SDKs' routes (infra/http_api.py); tests hold all three to it.
OPERATOR_ROUTES = frozenset(
    {
        ("DELETE", "/v1/runs/{run_id}"),
        ("POST", "/v1/cancellations"),
        ("POST", "/v1/runs/{run_id}/replay"),
        ("POST", "/v1/runs/{run_id}/rerun"),
        ("GET", "/v1/dead-letters"),
        ("POST", "/v1/dead-letters/redrive"),
        ("POST", "/v1/sweep"),
        ("GET", "/metrics"),
        ("POST", "/v1/erasures"),
        ("POST", "/v1/apps/sync"),
        ("POST", "/v1/events"),
        ("POST", "/v1/functions/{fn_id}/invoke"),
        ("GET", "/v1/webhooks"),
        ("POST", "/v1/webhooks"),
        ("DELETE", "/v1/webhooks/{source}"),
    }
)


def require(app: APIGatewayHttpResolver, engine: Engine, access: Access) -> None:
    if engine.settings.mode == "dev":
        return
    keys = engine.keys.current()
    presented = header(app, "authorization")
    if keys.operator_keys and bearer_matches(presented, list(keys.operator_keys)):
        return
    signed = bool(keys.signing_keys) and bearer_matches(presented, list(keys.signing_keys))
    if access == Access.APP:
        if signed:
            return
        if not keys.signing_keys and not keys.operator_keys:
            raise ApiError(500, "server has no signing key configured")
    elif signed:
        if not keys.operator_keys:
            raise ApiError(
                403,
                "authorization: this route needs the operator key, and none is configured "
                "(STEPLINE_OPERATOR_KEY, or the secret STEPLINE_OPERATOR_KEY_SECRET_ID names)",
            )
        raise ApiError(403, "authorization: this route needs the operator key; the signing key is for apps")
    raise ApiError(401, "authorization: missing or wrong bearer token")


def require_app(app: APIGatewayHttpResolver, engine: Engine) -> None:
    """The signing key (or fallback), or the operator key."""
    require(app, engine, Access.APP)


def require_operator(app: APIGatewayHttpResolver, engine: Engine) -> None:
    """The operator key only."""
    require(app, engine, Access.OPERATOR)
