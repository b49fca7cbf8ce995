"""The CEL library, loaded without its command-line interface: every CEL call goes through here.

``import cel`` runs the package's ``__init__``, which imports the package's own REPL
(``cel.cli``) and with it typer, rich, pygments and prompt_toolkit: about 0.17 s of every cold
start, for a prompt no server or SDK ever opens. Everything Stepline calls (``compile``,
``evaluate``, ``Context``, the ``Program`` they return) lives in the compiled extension
``cel/cel.*.so``, so this module loads that extension by itself, once, on first use, and
registers it as ``cel.cel``: a later ``import cel`` (a user's own code) reuses it rather than
initializing the extension twice. ``tests/protocol/test_cel_library.py`` fails if the CLI is
imported again.

Use it as the package::

    from stepline.protocol import cel_library as cel

    cel.compile("event.data.ok == true").execute({"event": {...}})
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

# The extension's import name inside the package (its init function is PyInit_cel).
EXTENSION = "cel.cel"
PACKAGE = "cel"

_lock = threading.Lock()


def extension() -> ModuleType:
    """The compiled CEL module, loaded on the first call."""
    loaded = sys.modules.get(EXTENSION)
    if loaded is not None:
        return loaded
    with _lock:
        loaded = sys.modules.get(EXTENSION)
        if loaded is None:
            loaded = _load()
    return loaded


def _load() -> ModuleType:
    # find_spec on a top-level name only locates the package: its __init__ does not run.
    package = importlib.util.find_spec(PACKAGE)
    if package is None or not package.submodule_search_locations:
        raise ImportError("the CEL library is not installed (the common-expression-language package)")
    spec = None
    for directory in package.submodule_search_locations:
        finder = importlib.machinery.FileFinder(
            directory,
            (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
        )
        spec = finder.find_spec(EXTENSION)
        if spec is not None:
            break
    if spec is None or spec.loader is None:
        raise ImportError(f"the CEL library's compiled module {EXTENSION} was not found in {package.origin}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[EXTENSION] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[EXTENSION]
        raise
    return module


def __getattr__(name: str) -> Any:
    """``cel_library.compile`` and the rest: the extension's attributes, loading it on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(extension(), name)
