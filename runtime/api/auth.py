"""Bearer auth for the API routes the SDKs and operators call (docs/protocol.md §3.4).

Dev mode runs without auth, as Inngest's dev server does: the SDKs send no bearer there, or a
junk one (`Bearer undefined`).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from stepline.api.errors import ApiError
from stepline.api.request import header
from stepline.protocol.signing import bearer_matches
from stepline.settings import Settings


def require_signing_key(app: APIGatewayHttpResolver, settings: Settings) -> None:
    if settings.mode == "dev":
        return
    if not settings.signing_keys:
        raise ApiError(500, "server has no signing key configured")
    if not bearer_matches(header(app, "authorization"), settings.signing_keys):
        raise ApiError(401, "authorization: missing or wrong bearer token")
