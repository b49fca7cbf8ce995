"""The SDK's name and version as it announces itself on the wire."""

from __future__ import annotations

from importlib import metadata

try:
    VERSION = metadata.version("stepline")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.1.0"

SDK_HEADER = f"stepline-py:v{VERSION}"
SDK_LANGUAGE = "py"
