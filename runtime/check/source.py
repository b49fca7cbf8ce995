"""Reading an app's source with ``ast``: its step calls, its function declarations and its serve
calls, with the literal arguments the checks judge.

Both Python SDKs (Stepline's and the official one) spell step tools the same way
(``ctx.step.run("id", ...)``, ``step.sleep("id", ...)``), so this works for either. Only calls on
something named ``step`` count: ``time.sleep(1)`` is not a step.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re

from stepline.check.model import SourceFile

STEP_TOOLS = {"run", "sleep", "sleep_until", "wait_for_event", "send_event", "invoke", "invoke_by_id"}
# Calls that put functions behind an HTTP endpoint (or a Lambda): Stepline's serve adapters.
SERVE_FUNCTIONS = {"serve_flask", "serve_fastapi", "serve_starlette", "serve_asgi", "serve_wsgi", "lambda_handler"}
# Placeholder for an f-string's interpolated parts when judging the literal rest of a step id.
_HOLE = "n"


def display_path(path: str) -> str:
    path = os.path.abspath(path)
    cwd = os.getcwd()
    return os.path.relpath(path, cwd) if path.startswith(cwd + os.sep) else path


def load_source(path: str) -> SourceFile | None:
    """The file parsed, or None when it cannot be read as Python source."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        tree = ast.parse(text, filename=path)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None
    return SourceFile(display_path(path), text, tree)


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of names and attributes, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def literal_text(node: ast.AST | None) -> tuple[str | None, bool]:
    """(text, partial): a string constant's value, or an f-string's literal parts with each
    interpolation standing as ``n``; (None, False) for anything computed."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, False
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                parts.append(value.value)
            else:
                parts.append(_HOLE)
        text = "".join(parts)
        if text.strip(_HOLE) == "":  # nothing literal to judge
            return None, False
        return text, True
    return None, False


def numeric_value(node: ast.AST) -> float | None:
    """The value of a number written with constants and + - * / //, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = numeric_value(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv)):
        left, right = numeric_value(node.left), numeric_value(node.right)
        if left is None or right is None:
            return None
        try:
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, ast.Div):
                return left / right
            return left // right
        except ZeroDivisionError:
            return None
    return None


def duration_kind(node: ast.AST | None) -> str:
    """How a duration argument is written: ``string``, ``timedelta``, ``number`` (a bare count,
    i.e. milliseconds to the official SDKs) or ``unknown`` (computed at run time)."""
    if node is None:
        return "unknown"
    if literal_text(node)[0] is not None or isinstance(node, ast.JoinedStr):
        return "string"
    if numeric_value(node) is not None:
        return "number"
    if isinstance(node, ast.Call):
        name = dotted(node.func) or ""
        if name.split(".")[-1] == "timedelta":
            return "timedelta"
        if name in ("int", "float", "round"):
            return "number"
        if name == "str":
            return "string"
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Add, ast.Sub, ast.Div, ast.FloorDiv)):
        # ``seconds * 1000``: arithmetic with a number literal yields a number, unless the other
        # side is itself a timedelta.
        sides = (node.left, node.right)
        if any(duration_kind(s) == "timedelta" for s in sides):
            return "timedelta"
        if any(numeric_value(s) is not None for s in sides):
            return "number"
    return "unknown"


@dataclasses.dataclass
class StepCall:
    tool: str
    call: ast.Call
    source: SourceFile
    step_id: str | None  # the literal id (an f-string's holes shown as ``n``); None: computed
    partial: bool  # the id is an f-string: only its literal parts are known
    enclosing: str | None  # the def the call is written in

    @property
    def lineno(self) -> int:
        return self.call.lineno

    @property
    def location(self) -> str:
        return f"{self.source.path}:{self.lineno}"

    def argument(self, position: int, *names: str) -> ast.AST | None:
        """The argument at ``position`` (after the step id) or under one of ``names``."""
        for kw in self.call.keywords:
            if kw.arg in names:
                return kw.value
        if len(self.call.args) > position and not any(
            isinstance(a, ast.Starred) for a in self.call.args[: position + 1]
        ):
            return self.call.args[position]
        return None

    def keyword(self, name: str) -> ast.keyword | None:
        return next((kw for kw in self.call.keywords if kw.arg == name), None)

    @property
    def has_var_kwargs(self) -> bool:
        return any(kw.arg is None for kw in self.call.keywords)


def _is_step_receiver(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "step") or (
        isinstance(node, ast.Name) and node.id == "step"
    )


class _StepVisitor(ast.NodeVisitor):
    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.defs: list[str] = []
        self.calls: list[StepCall] = []

    def _visit_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.defs.append(node.name)
        self.generic_visit(node)
        self.defs.pop()

    visit_FunctionDef = _visit_def
    visit_AsyncFunctionDef = _visit_def

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in STEP_TOOLS and _is_step_receiver(func.value):
            id_node = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "step_id"), None)
            text, partial = literal_text(id_node)
            self.calls.append(
                StepCall(func.attr, node, self.source, text, partial, self.defs[-1] if self.defs else None)
            )
        self.generic_visit(node)


def step_calls(source: SourceFile) -> list[StepCall]:
    visitor = _StepVisitor(source)
    visitor.visit(source.tree)
    return visitor.calls


@dataclasses.dataclass
class Declaration:
    """``@<client>.function("id", ...)`` (Stepline) or ``@<client>.create_function(fn_id="id")``."""

    client: str
    fn_id: str
    def_name: str
    source: SourceFile
    lineno: int

    @property
    def location(self) -> str:
        return f"{self.source.path}:{self.lineno}"


def declarations(source: SourceFile) -> list[Declaration]:
    out = []
    for node in ast.walk(source.tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for dec in node.decorator_list:
            if not (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute)):
                continue
            if dec.func.attr == "function":
                id_node = dec.args[0] if dec.args else next((k.value for k in dec.keywords if k.arg == "id"), None)
            elif dec.func.attr == "create_function":
                id_node = next((k.value for k in dec.keywords if k.arg == "fn_id"), None)
            else:
                continue
            text, partial = literal_text(id_node)
            if text is not None and not partial:
                out.append(
                    Declaration(
                        dotted(dec.func.value) or ast.unparse(dec.func.value), text, node.name, source, dec.lineno
                    )
                )
    return out


@dataclasses.dataclass
class ServeCall:
    name: str
    call: ast.Call
    source: SourceFile

    @property
    def location(self) -> str:
        return f"{self.source.path}:{self.call.lineno}"


def _inngest_serve_names(tree: ast.Module) -> set[str]:
    """Local names bound to an official-SDK ``serve`` (``from inngest.flask import serve``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("inngest"):
            for alias in node.names:
                if alias.name == "serve":
                    names.add(alias.asname or alias.name)
    return names


def serve_calls(source: SourceFile) -> list[ServeCall]:
    inngest_serves = _inngest_serve_names(source.tree)
    out = []
    for node in ast.walk(source.tree):
        if not isinstance(node, ast.Call):
            continue
        name = dotted(node.func) or ""
        last = name.split(".")[-1]
        if last in SERVE_FUNCTIONS or (last == "serve" and name.startswith("inngest.")) or name in inngest_serves:
            out.append(ServeCall(name, node, source))
    return out


# -- step names -----------------------------------------------------------------------------

KEBAB = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
# Ids that say nothing about what the step does.
GENERIC_IDS = {
    "step",
    "run",
    "do",
    "task",
    "work",
    "action",
    "job",
    "test",
    "tmp",
    "temp",
    "foo",
    "bar",
    "baz",
    "thing",
    "stuff",
    "todo",
    "main",
    "handler",
    "fn",
    "func",
    "function",
    "process",
    "call",
    "exec",
}
_GENERIC_NUMBERED = re.compile(r"^(?:step|task|s|t|job|run)-?[0-9n]+$")
MIN_LENGTH = 3


def step_name_problem(step_id: str) -> str | None:
    """Why ``step_id`` is not a descriptive kebab-case name, or None when it is."""
    if not KEBAB.match(step_id):
        return "is not kebab-case (lowercase words joined by '-')"
    if step_id in GENERIC_IDS or _GENERIC_NUMBERED.match(step_id):
        return "does not say what the step does"
    if len(step_id.replace("-", "")) < MIN_LENGTH:
        return f"is too short to say what the step does (under {MIN_LENGTH} letters)"
    return None


def kebab_case(text: str) -> str:
    """``"Charge Card"`` / ``chargeCard`` / ``charge_card`` -> ``charge-card``."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", text)
    text = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return text
