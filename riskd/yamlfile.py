"""YAML files that report their problems as ``file:line: what is wrong``.

Rule files and the daemon's config file are written by people, so a mistake must come back
as one line per problem, every problem at once, pointing at the line of the key or list item
that is wrong, never as a traceback. This module is generic: it loads YAML keeping the line of
every mapping key and sequence item, and turns a pydantic ``ValidationError`` raised on the
loaded data into those lines.

Two deliberate departures from PyYAML's YAML 1.1 defaults, both because the files hold clock
times and money:

- no base-60 numbers: unquoted ``17:00`` stays the string ``"17:00"`` (YAML 1.1 reads it as
  the integer 1020), and ``1:30`` is not 90;
- no octal: ``0500`` is not 320 (it stays a string, and validation says what is wrong).

A key given twice in one mapping is an error (PyYAML silently keeps the last one, which hides a
typo such as two ``limit:`` lines).

Values of keys named like a secret (password, token, key, secret, credential) are never echoed
in a message.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

Loc = tuple[str | int, ...]
"""A path into loaded YAML data: mapping keys (str) and sequence indexes (int)."""

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_SECRET_NAME = re.compile(r"pass(word|wd)?|token|secret|key|credential", re.IGNORECASE)


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 base-60 and octal numbers (see the module docstring)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _INT_TAG,
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


class YamlFileError(Exception):
    """A YAML file could not be read or parsed; ``problems`` are ``file:line: ...`` lines."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """Loaded YAML data with the 1-based line of every mapping key and sequence item.

    ``lines`` maps a path (``("accounts", 0, "initial_balance")``) to the line of that key or
    item; ``()`` is the document itself.
    """

    path: str
    data: Any
    lines: Mapping[Loc, int] = field(repr=False)

    def line_of(self, loc: Iterable[str | int]) -> int:
        """The line of the deepest part of ``loc`` that exists in the file.

        Parts that are not in the data are skipped rather than ending the walk: pydantic puts
        the tag of a discriminated union into its error locations (``(0, "daily_loss",
        "limit")``), and the key after it is still in the file. A missing field resolves to
        the line of the mapping it is missing from.
        """
        best = self.lines.get((), 1)
        prefix: Loc = ()
        for part in loc:
            candidate = (*prefix, part)
            line = self.lines.get(candidate)
            if line is not None:
                prefix = candidate
                best = line
        return best

    def where(self, loc: Iterable[str | int]) -> str:
        """``path:line`` for ``loc``."""
        return f"{self.path}:{self.line_of(loc)}"

    def problems(
        self,
        error: ValidationError,
        *,
        describe_loc: Callable[[Loc], str] | None = None,
        known_fields: Callable[[Loc], Iterable[str]] | None = None,
    ) -> list[str]:
        """One ``file:line: what is wrong`` line per problem of ``error`` (see module doc)."""
        return validation_problems(
            error, self, describe_loc=describe_loc, known_fields=known_fields
        )


def parse_yaml(text: str, path: str = "<string>") -> YamlDocument:
    """Parse one YAML document from ``text``; ``path`` is only used in messages.

    Raises ``YamlFileError`` on a syntax error or a key given twice in one mapping. An empty
    document loads as ``None``.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise YamlFileError([_syntax_problem(path, exc)]) from None
    except yaml.YAMLError as exc:  # unmarked errors are rare (reader errors carry a position)
        raise YamlFileError([f"{path}:1: invalid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    problems: list[str] = []
    if node is not None:
        _walk(node, (), lines, problems, path, set())
    if problems:
        raise YamlFileError(problems)
    return YamlDocument(path=path, data=data, lines=lines)


def load_yaml(path: str | Path) -> YamlDocument:
    """Read and parse the YAML file at ``path`` (UTF-8); see ``parse_yaml``."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise YamlFileError([f"{name}: cannot read the file: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise YamlFileError([f"{name}:{line}: the file is not UTF-8 text"]) from None
    return parse_yaml(text, name)


def validation_problems(
    error: ValidationError,
    doc: YamlDocument,
    *,
    describe_loc: Callable[[Loc], str] | None = None,
    known_fields: Callable[[Loc], Iterable[str]] | None = None,
) -> list[str]:
    """Turn ``error`` (raised validating ``doc.data``) into ``file:line: ...`` lines.

    ``describe_loc`` renders a location for people (default: ``reset.zone``,
    ``accounts[0].id``); ``known_fields`` lists the fields allowed where an unknown key was
    found, for a "did you mean" hint. Problems are sorted by line, then by message.
    """
    render = describe_loc or default_describe_loc
    out: list[tuple[int, str]] = []
    for err in error.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        if err["type"] == "union_tag_invalid":
            # Point at the line of the tag key (``kind:``), not the start of the item.
            tag_key = str((err.get("ctx") or {}).get("discriminator", "")).strip("'")
            if (*loc, tag_key) in doc.lines:
                loc = (*loc, tag_key)
        line = doc.line_of(loc)
        message = _message(err, loc, doc, known_fields)
        data_loc = _data_loc(loc, doc)
        if err["type"] in ("missing", "extra_forbidden") and data_loc and data_loc[-1] == loc[-1]:
            data_loc = data_loc[:-1]  # the message names the field itself
        where = render(data_loc)
        text = (
            f"{doc.path}:{line}: {where}: {message}" if where else f"{doc.path}:{line}: {message}"
        )
        out.append((line, text))
    out.sort()
    # Unions report one error per member for the same bad value; say each thing once.
    return list(dict.fromkeys(text for _, text in out))


def default_describe_loc(loc: Loc) -> str:
    """Render a location like ``accounts[0].reset.zone``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def is_secret_name(name: str) -> bool:
    """True for key names whose values must never appear in a message."""
    return bool(_SECRET_NAME.search(name))


# --- internals -------------------------------------------------------------------------------


def _walk(
    node: yaml.Node,
    loc: Loc,
    lines: dict[Loc, int],
    problems: list[str],
    path: str,
    seen: set[int],
) -> None:
    # Anchors make the node graph a DAG (or, with a recursive alias, cyclic): visit each node
    # once, so an alias bomb cannot make this walk exponential or endless.
    if id(node) in seen:
        return
    seen.add(id(node))
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        first_line: dict[object, int] = {}
        for key_node, value_node in node.value:
            if (
                not isinstance(key_node, yaml.ScalarNode)
                or key_node.tag == "tag:yaml.org,2002:merge"
            ):
                continue
            key: str = key_node.value
            key_line = key_node.start_mark.line + 1
            if key in first_line:
                problems.append(
                    f"{path}:{key_line}: key '{key}' is given twice in this mapping "
                    f"(first at line {first_line[key]})"
                )
                continue
            first_line[key] = key_line
            lines.setdefault((*loc, key), key_line)
            _walk(value_node, (*loc, key), lines, problems, path, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.setdefault((*loc, index), item.start_mark.line + 1)
            _walk(item, (*loc, index), lines, problems, path, seen)


def _syntax_problem(path: str, exc: yaml.MarkedYAMLError) -> str:
    # str(exc) quotes the offending source line, which could hold a secret: build the message
    # from the problem text and the position only.
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    details = [exc.context] if exc.context else []
    if mark is not None:
        details.append(f"column {mark.column + 1}")
    suffix = f" ({', '.join(details)})" if details else ""
    return f"{path}:{line}: invalid YAML: {exc.problem or 'syntax error'}{suffix}"


def _data_loc(loc: Loc, doc: YamlDocument) -> Loc:
    """``loc`` without the parts that are not in the data (union tags, missing fields)."""
    out: Loc = ()
    for part in loc:
        candidate = (*out, part)
        if candidate in doc.lines:
            out = candidate
    return out


def _message(
    err: ErrorDetails,
    loc: Loc,
    doc: YamlDocument,
    known_fields: Callable[[Loc], Iterable[str]] | None,
) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    last = loc[-1] if loc else ""
    if kind == "missing":
        message = f"missing required field '{last}'"
    elif kind == "extra_forbidden":
        message = f"unknown field '{last}'"
        if known_fields is not None and isinstance(last, str):
            close = difflib.get_close_matches(
                last, list(known_fields(_data_loc(loc[:-1], doc))), n=1
            )
            if close:
                message += f" (did you mean '{close[0]}'?)"
    elif kind == "union_tag_invalid":
        expected = ctx.get("expected_tags", "")
        message = f"unknown value '{ctx.get('tag', '')}'; expected one of {expected}"
    elif kind == "union_tag_not_found":
        message = f"missing required field {ctx.get('discriminator', '')}"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"expected a mapping of fields, found {_type_name(err.get('input'))}"
    elif kind == "list_type":
        message = f"expected a list, found {_type_name(err.get('input'))}"
    else:
        message = err["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
    if any(isinstance(part, str) and is_secret_name(part) for part in loc):
        message = _redact(message, err.get("input"))
    return message


def _type_name(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return "text"
    return "a number" if isinstance(value, int | float) else type(value).__name__


def _redact(message: str, value: object) -> str:
    if isinstance(value, str | int | float) and str(value):
        message = message.replace(repr(value), "'***'").replace(str(value), "***")
    return message
