"""Stepline: durable execution in your own AWS account.

The names below are the Python SDK (``stepline.sdk``); ``stepline.testing`` runs one function
in-process for unit tests. The rest of the package is the runtime itself.
"""

from stepline.sdk import *  # noqa: F403 - the SDK's public surface is the package's
from stepline.sdk import __all__  # noqa: F401
