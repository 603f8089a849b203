"""A small Handlebars subset for notification templates and webhook bodies.

``{{ path }}`` inserts a value (``fields.job-id``: dotted, kebab-case keys; a list prints
comma-separated; a missing value prints nothing), ``{{ json path }}``, ``{{ url-encode path }}``
and ``{{ escape path }}`` are the helpers proxmox-notify offers, ``{{#each path}}…{{this}}…{{/each}}``
repeats for each item of a list, ``{{#if path}}…{{else}}…{{/if}}`` tests a value. Triple braces
are the same as double ones: nothing is HTML-escaped unless ``escape`` says so.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from tapefs.notify.errors import NotificationConfigError

_TAG = re.compile(r"\{\{\{\s*(.*?)\s*\}\}\}|\{\{\s*(.*?)\s*\}\}", re.DOTALL)
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*|this")

HELPERS = {
    "json": lambda value: json.dumps(value, ensure_ascii=False),
    "url-encode": lambda value: urllib.parse.quote(_text(value), safe=""),
    "escape": lambda value: html.escape(_text(value)),
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@dataclass
class _Block:
    kind: str  # "root", "each" or "if"
    path: str = ""
    body: list = field(default_factory=list)
    otherwise: list | None = None


@dataclass(frozen=True)
class _Insert:
    helper: str | None
    path: str


def _check_path(path: str, template: str) -> str:
    if not _PATH.fullmatch(path):
        raise NotificationConfigError(f"template {_excerpt(template)}: {path!r} is not a value name")
    return path


def _excerpt(template: str) -> str:
    return repr(template if len(template) <= 40 else template[:37] + "...")


def parse_template(template: str) -> _Block:
    """The template as a tree; a NotificationConfigError names what is wrong."""
    root = _Block("root")
    stack = [root]
    position = 0
    for match in _TAG.finditer(template):
        current = stack[-1]
        target = current.body if current.otherwise is None else current.otherwise
        if match.start() > position:
            target.append(template[position : match.start()])
        position = match.end()
        tag = match.group(1) if match.group(1) is not None else match.group(2)
        if tag.startswith("#"):
            kind, _, path = tag[1:].partition(" ")
            if kind not in ("each", "if"):
                raise NotificationConfigError(f"template {_excerpt(template)}: unknown block {{{{#{kind}}}}}")
            block = _Block(kind, _check_path(path.strip(), template))
            target.append(block)
            stack.append(block)
        elif tag.startswith("/"):
            if len(stack) == 1 or tag[1:].strip() != stack[-1].kind:
                raise NotificationConfigError(f"template {_excerpt(template)}: unexpected {{{{{tag}}}}}")
            stack.pop()
        elif tag == "else":
            if current.kind != "if" or current.otherwise is not None:
                raise NotificationConfigError(f"template {_excerpt(template)}: {{{{else}}}} outside of {{{{#if}}}}")
            current.otherwise = []
        else:
            words = tag.split()
            if len(words) == 2 and words[0] in HELPERS:
                target.append(_Insert(words[0], _check_path(words[1], template)))
            elif len(words) == 1:
                target.append(_Insert(None, _check_path(words[0], template)))
            else:
                known = ", ".join(HELPERS)
                raise NotificationConfigError(
                    f"template {_excerpt(template)}: cannot read {{{{{tag}}}}} (helpers: {known})"
                )
    if len(stack) > 1:
        raise NotificationConfigError(f"template {_excerpt(template)}: {{{{#{stack[-1].kind}}}}} is not closed")
    if position < len(template):
        root.body.append(template[position:])
    return root


def _lookup(context: dict[str, Any], path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _render(nodes: list, context: dict[str, Any], out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Insert):
            value = _lookup(context, node.path)
            out.append(HELPERS[node.helper](value) if node.helper else _text(value))
        elif node.kind == "each":
            for item in _lookup(context, node.path) or ():
                _render(node.body, {**context, "this": item}, out)
        else:
            _render(node.body if _lookup(context, node.path) else node.otherwise or [], context, out)


def render_template(template: str, context: dict[str, Any]) -> str:
    out: list[str] = []
    _render(parse_template(template).body, context, out)
    return "".join(out)
