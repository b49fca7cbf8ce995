"""The one client every example workflow is declared on.

Dev mode unless INNGEST_DEV says otherwise: the examples are meant for `stepline dev`
(INNGEST_DEV=http://127.0.0.1:8288, which `make dev` sets). To run them against a deployed
Stepline, set INNGEST_DEV=0, INNGEST_BASE_URL, INNGEST_SIGNING_KEY and INNGEST_EVENT_KEY.
"""

from __future__ import annotations

import os

from stepline import Client

client = Client(
    "stepline-examples",
    dev=os.environ.get("INNGEST_DEV", "1").strip().lower() not in ("0", "false"),
)
