"""Module and file targets: import the app, read what its import created, and read its source.

What the import shows: the clients and their functions (each function's register entry, exactly
as a sync would send it, and its typed triggers), and the serve handlers with the functions each
one serves. What the source shows: step calls, serve calls made at run time (an app factory),
and duplicate ids that stopped the import.

The import runs with ``INNGEST_DEV=1`` unless the environment says otherwise, so an app that
serves in cloud mode does not need a signing key to be checked; nothing is sent anywhere. Output
the app prints while importing goes to stderr, keeping ``--format json`` clean.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import importlib
import importlib.util
import inspect
import os
import re
import sys
import types
from collections.abc import Iterator
from typing import Any

from stepline.check.model import AppView, FunctionView, Sdk, ServeInfo, SourceFile, TargetError
from stepline.check.source import display_path, load_source, serve_calls
from stepline.sdk.client import Client
from stepline.sdk.errors import SdkError
from stepline.sdk.function import Function
from stepline.sdk.serve.handler import Handler

PLACEHOLDER_URL = "http://localhost/api/inngest"
_DUPLICATE = re.compile(r"already declared|served with the id")
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def looks_like_file(target: str) -> bool:
    return target.endswith(".py") or os.sep in target or "/" in target or os.path.isfile(target)


@contextlib.contextmanager
def _dev_mode() -> Iterator[None]:
    keys = ("INNGEST_DEV", "STEPLINE_DEV")
    if any(k in os.environ for k in keys):
        yield
        return
    os.environ["INNGEST_DEV"] = "1"
    try:
        yield
    finally:
        os.environ.pop("INNGEST_DEV", None)


def _package_root(path: str) -> tuple[str, str]:
    """(directory to import from, dotted module name) of a file, walking up its packages."""
    directory, stem = os.path.split(os.path.abspath(path))
    parts = [stem[:-3] if stem.endswith(".py") else stem]
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.insert(0, package)
    return directory, ".".join(parts)


def _import(target: str) -> tuple[types.ModuleType, str | None]:
    """The imported module and the directory holding the app's code (for its other files)."""
    if looks_like_file(target):
        if not os.path.isfile(target):
            raise TargetError(f"no such file: {target}")
        root, name = _package_root(target)
        if root not in sys.path:
            sys.path.insert(0, root)
        if "." in name:
            return importlib.import_module(name), os.path.join(root, name.split(".")[0])
        # A lone file: a name of its own, so it cannot shadow (or be shadowed by) a module
        # already imported under its stem.
        unique = f"_stepline_check_{name}"
        if unique in sys.modules:
            return sys.modules[unique], root
        spec = importlib.util.spec_from_file_location(unique, os.path.abspath(target))
        if spec is None or spec.loader is None:
            raise TargetError(f"cannot load {target} as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(unique, None)
            raise
        return module, root
    if not _MODULE_NAME.match(target):
        raise TargetError(f"{target!r} is neither a file, a module name nor an http(s) URL")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    module = importlib.import_module(target)
    file = getattr(module, "__file__", None)
    top = sys.modules.get(target.split(".")[0])
    top_file = getattr(top, "__file__", None) if top is not None else None
    if top_file and os.path.basename(top_file) == "__init__.py":
        return module, os.path.dirname(top_file)
    return module, os.path.dirname(file) if file else None


def _own_code(path: str | None) -> bool:
    """The app's own code, not an installed library's or the standard library's."""
    if not path:
        return False
    path = os.path.abspath(path)
    return not ("site-packages" in path.split(os.sep) or path.startswith(os.path.abspath(sys.base_prefix) + os.sep))


def _under(path: str | None, root: str | None) -> bool:
    if not path or not root or not _own_code(path):
        return False
    return os.path.abspath(path).startswith(os.path.abspath(root) + os.sep)


def _location(obj: Any) -> str | None:
    try:
        path = inspect.getsourcefile(obj)
        line = obj.__code__.co_firstlineno
    except (TypeError, AttributeError):
        return None
    return f"{display_path(path)}:{line}" if path else None


def inspect_module(target: str) -> AppView:
    """Import ``target`` (a dotted module name or a .py file) and build its ``AppView``."""
    before = set(sys.modules)
    import_error: str | None = None
    module: types.ModuleType | None = None
    root: str | None = None
    with _dev_mode(), contextlib.redirect_stdout(sys.stderr):
        try:
            module, root = _import(target)
        except TargetError:
            raise
        except SdkError as err:
            if not _DUPLICATE.search(str(err)):
                raise TargetError(f"importing {target} failed: {err}") from None
            import_error = str(err)
        except SyntaxError as err:
            raise TargetError(f"{target} is not valid Python: {err}") from None
        except ModuleNotFoundError as err:
            raise TargetError(f"cannot import {target}: {err}") from None
        except (Exception, SystemExit) as err:  # noqa: BLE001 - any failure of the app's own import code
            raise TargetError(f"importing {target} raised {type(err).__name__}: {err}") from None

    new_modules = [sys.modules[name] for name in set(sys.modules) - before if name in sys.modules]
    scanned = [m for m in new_modules if _under(getattr(m, "__file__", None), root)]
    if module is not None and module not in scanned:
        scanned.insert(0, module)

    view = AppView(target=target, kind="module", import_error=import_error)
    if import_error is not None:
        sources = _sources(target, module, scanned, [])
        # The failed import leaves no objects; the source still shows the duplicate and the serving.
        view.sources = sources
        view.serve = _serve_from_source(sources, 0, "is in the source (the import stopped before it ran)")
        return view

    clients, functions = _stepline_objects(scanned)
    official = _official_functions(scanned)
    if not clients and not functions and not official:
        raise TargetError(
            f"{target} declares no Stepline client or function (and no Inngest function): "
            "nothing to check. Point the check at the module that declares the client and its "
            "functions, or at the app's serve URL"
        )
    if official and not clients and not functions:
        return _official_view(view, official, scanned, _sources(target, module, scanned, []))

    handlers = [h for h in _live_handlers() if h.client in clients or any(f in functions for f in h.functions.values())]
    served_ids = {id(f) for h in handlers for f in h.functions.values()}
    declared: list[Function] = []
    client_of: dict[int, Client] = {}
    for client in clients:
        for fn in client.functions:
            if fn not in declared:
                declared.append(fn)
                client_of[id(fn)] = client
    for fn in functions:
        for one in fn.with_failure_handler():
            if one not in declared:
                declared.append(one)
    for handler in handlers:
        for fn in handler.functions.values():
            if fn not in declared:
                declared.append(fn)

    # The files the functions are written in hold their steps, even when the target only imports
    # them (an app module that gathers workflows from others).
    handler_files = [inspect.getsourcefile(fn.handler) or "" for fn in declared]
    sources = _sources(target, module, scanned, [p for p in handler_files if _own_code(p)])
    source_serves = [c for s in sources for c in serve_calls(s)]
    for fn in declared:
        owner = client_of.get(id(fn))
        config = fn.config(PLACEHOLDER_URL)
        models = {name: model.__name__ for name, model in fn.event_models.items()}
        view.functions.append(
            FunctionView(
                id=fn.composite_id,
                config=config,
                app_id=fn.app_id,
                served=(id(fn) in served_ids) if handlers else None,
                event_models={t["event"]: models.get(t["event"]) for t in config["triggers"] if "event" in t},
                location=_location(fn.handler),
                client=f"Client({owner.app_id!r})" if owner is not None else None,
            )
        )
    view.app_ids = sorted({fn.app_id for fn in declared} | {c.app_id for c in clients})
    view.sdk_objects = True
    view.sdk = Sdk.STEPLINE
    view.sources = sources
    if handlers:
        frameworks = sorted({h.framework for h in handlers})
        served = len({f.composite_id for h in handlers for f in h.functions.values()})
        view.serve = ServeInfo(
            True,
            f"{len(handlers)} serve handler(s) ({', '.join(frameworks)}) serve {served} function(s)",
            source_serves[0].location if source_serves else None,
        )
    else:
        view.serve = _serve_from_source(sources, len(declared))
    return view


def _serve_from_source(
    sources: list[SourceFile],
    count: int,
    found: str = "serves the functions (it runs after import, so the functions it serves are not inspected)",
) -> ServeInfo:
    calls = [c for s in sources for c in serve_calls(s)]
    if calls:
        return ServeInfo(True, f"{calls[0].name}(...) {found}", calls[0].location)
    what = f" its {count} function(s)" if count else " the functions"
    return ServeInfo(
        False,
        f"nothing serves{what}: no serve handler is created at import and no "
        "serve_flask/serve_fastapi/serve_starlette/serve_asgi/serve_wsgi/lambda_handler call "
        "is in the source, so no server can sync or call the app",
    )


def _sources(
    target: str, module: types.ModuleType | None, scanned: list[types.ModuleType], extra: list[str]
) -> list[SourceFile]:
    paths: list[str] = []
    if looks_like_file(target):
        paths.append(os.path.abspath(target))
    elif module is not None and module.__file__:
        paths.append(os.path.abspath(module.__file__))
    elif module is None:
        spec = importlib.util.find_spec(target) if _MODULE_NAME.match(target) else None
        if spec is not None and spec.origin:
            paths.append(os.path.abspath(spec.origin))
    for path in [getattr(mod, "__file__", None) for mod in scanned] + extra:
        if path and path.endswith(".py") and os.path.abspath(path) not in paths:
            paths.append(os.path.abspath(path))
    out = []
    for path in paths:
        source = load_source(path)
        if source is not None:
            out.append(source)
    return out


def _stepline_objects(modules: list[types.ModuleType]) -> tuple[list[Client], list[Function]]:
    clients: list[Client] = []
    functions: list[Function] = []
    for mod in modules:
        for value in list(vars(mod).values()):
            if isinstance(value, Client) and value not in clients:
                clients.append(value)
            elif isinstance(value, Function) and value not in functions:
                functions.append(value)
    return clients, functions


def _live_handlers() -> list[Handler]:
    # serve_flask(app, client) keeps its handler inside the framework's route table, where no
    # module global points at it: the garbage collector's view of live objects finds it.
    return [o for o in gc.get_objects() if isinstance(o, Handler)]


# -- apps on the official Python SDK ------------------------------------------------------------


def _official_functions(modules: list[types.ModuleType]) -> list[Any]:
    inngest = sys.modules.get("inngest")
    kind = getattr(inngest, "Function", None) if inngest is not None else None
    if kind is None:
        return []
    out: list[Any] = []
    for mod in modules:
        for value in list(vars(mod).values()):
            if isinstance(value, kind) and value not in out:
                out.append(value)
    return out


def _official_configs(fn: Any) -> list[dict[str, Any]]:
    config = fn.get_config(PLACEHOLDER_URL)
    out = []
    for part in (config.main, config.on_failure):
        if part is not None:
            out.append(part.model_dump(by_alias=True, mode="json", exclude_none=True))
    return out


def _served_by_official(sources: list[SourceFile], modules: list[types.ModuleType]) -> set[int] | None:
    """Ids of the official-SDK functions passed to its ``serve(app, client, functions)`` calls, or
    None when a call's function list cannot be read without running the app."""
    served: set[int] = set()
    namespace: dict[str, Any] = {}
    for mod in modules:
        namespace.update(vars(mod))
    calls = [c for s in sources for c in serve_calls(s) if "inngest" in c.name or c.name == "serve"]
    for call in calls:
        node = (
            call.call.args[2]
            if len(call.call.args) > 2
            else next((k.value for k in call.call.keywords if k.arg == "functions"), None)
        )
        if isinstance(node, ast.Name) and isinstance(namespace.get(node.id), (list, tuple)):
            served.update(id(f) for f in namespace[node.id])
        elif isinstance(node, (ast.List, ast.Tuple)) and all(
            isinstance(e, ast.Name) and e.id in namespace for e in node.elts
        ):
            served.update(id(namespace[e.id]) for e in node.elts if isinstance(e, ast.Name))
        else:
            return None
    return served if calls else None


def _official_view(
    view: AppView, official: list[Any], modules: list[types.ModuleType], sources: list[SourceFile]
) -> AppView:
    view.sdk = Sdk.PYTHON
    served = _served_by_official(sources, modules)
    for fn in official:
        local = getattr(fn, "local_id", None) or fn.id
        app_id = fn.id[: -len(local) - 1] if fn.id.endswith(f"-{local}") else None
        for config in _official_configs(fn):
            view.functions.append(
                FunctionView(
                    id=config["id"],
                    config=config,
                    app_id=app_id,
                    served=(id(fn) in served) if served is not None else None,
                    location=_location(getattr(fn, "_handler", None)),
                )
            )
    view.app_ids = sorted({f.app_id for f in view.functions if f.app_id})
    view.sources = sources
    calls = [c for s in sources for c in serve_calls(s)]
    if calls:
        count = f"{len(served)} function(s)" if served is not None else "the functions"
        view.serve = ServeInfo(True, f"{calls[0].name}(...) serves {count}", calls[0].location)
    else:
        view.serve = _serve_from_source(sources, len(official))
    return view
