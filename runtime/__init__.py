"""Stepline: durable execution in your own AWS account.

The names below are the Python SDK (``runtime.sdk``); ``runtime.testing`` runs one function
in-process for unit tests. The rest of the package is the runtime itself.
"""

from runtime.sdk import *  # noqa: F403 - the SDK's public surface is the package's
from runtime.sdk import __all__  # noqa: F401
