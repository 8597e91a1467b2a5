"""The SOSL and SOQL subsets the fake Salesforce understands, over its in-memory records.

SOSL: ``FIND {terms} [IN ALL|NAME|PHONE FIELDS] RETURNING Obj(f, g, Rel.h), ... [LIMIT n]``.
Terms are words or ``"phrases"`` joined by ``OR`` (or side by side: all must match). Every
reserved character must be escaped with a backslash, inside phrases too, and every term
must be two characters or more, as Salesforce demands.

Phone fields match the way Salesforce's search index does in spirit: the same digits, or a
shared run of three digits or more (``555`` of ``(415) 555-0100``), so a search finds more
than the exact number and callers must filter.

SOQL: ``SELECT f, g FROM Obj [WHERE f = 'x' AND g IN ('a', 'b') ...] [ORDER BY f [DESC]]
[LIMIT n]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Field", "QueryError", "run_soql", "run_sosl"]

RESERVED = frozenset("?&|!{}[]()^~*:\\\"'+-")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    """id string textarea phone email url picklist int double bool date datetime reference"""
    length: int = 255
    create: bool = True
    update: bool = True
    required: bool = False
    values: tuple[str, ...] = ()
    restricted: bool = False
    refs: tuple[str, ...] = ()
    external_id: bool = False
    unique: bool = False
    label: str = ""


class QueryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Schema = Mapping[str, Mapping[str, Field]]
Db = Mapping[str, Mapping[str, dict[str, Any]]]


# --- SOSL -----------------------------------------------------------------------------------


def _braced(q: str) -> tuple[str, str]:
    match = re.match(r"\s*FIND\s*\{", q, re.IGNORECASE)
    if not match:
        raise QueryError("MALFORMED_SEARCH", "SOSL must start with FIND {")
    i, escaped = match.end(), False
    while i < len(q):
        ch = q[i]
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "}":
            return q[match.end() : i], q[i + 1 :]
        i += 1
    raise QueryError("MALFORMED_SEARCH", "missing } after the search terms")


def _terms(text: str) -> list[list[str]]:
    """OR-separated groups of terms (all of a group must match)."""
    groups: list[list[str]] = [[]]
    for token, quoted in _term_tokens(text):
        if not quoted and token == "OR":
            groups.append([])
        elif not quoted and token in ("AND",):
            continue
        else:
            if len(token) < 2:
                raise QueryError(
                    "INVALID_SEARCH", f"search term must be longer than one character: {token}"
                )
            groups[-1].append(token)
    if not all(groups):
        raise QueryError("MALFORMED_SEARCH", "No search term found")
    return groups


def _term_tokens(text: str) -> Iterator[tuple[str, bool]]:
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        quoted = text[i] == '"'
        i, token = _read_term(text, i + 1 if quoted else i, quoted)
        yield token, quoted


def _read_term(text: str, i: int, quoted: bool) -> tuple[int, str]:
    out: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if quoted and ch == '"':
            return i + 1, "".join(out)
        if not quoted and ch.isspace():
            break
        if ch in RESERVED:
            raise QueryError("MALFORMED_SEARCH", f"unescaped reserved character {ch!r}")
        out.append(ch)
        i += 1
    if quoted:
        raise QueryError("MALFORMED_SEARCH", "unterminated phrase")
    return i, "".join(out)


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:\\.|[^'\\])*')|(?P<num>\d+(?:\.\d+)?)|"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<op>!=|[=(),<>]))"
)


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError("MALFORMED_QUERY", f"unexpected text: {text[pos : pos + 20]!r}")
        out.append(match.group(match.lastgroup or "op"))
        pos = match.end()
    return out


class _Reader:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self) -> str:
        return self.tokens[self.i] if self.i < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if not token or (expected and token.upper() != expected):
            raise QueryError("MALFORMED_QUERY", f"expected {expected or 'more'}, got {token!r}")
        self.i += 1
        return token

    def accept(self, word: str) -> bool:
        if self.peek().upper() == word:
            self.i += 1
            return True
        return False


def _returning(reader: _Reader, schema: Schema) -> list[tuple[str, list[str]]]:
    specs: list[tuple[str, list[str]]] = []
    while True:
        obj = reader.take()
        if obj not in schema:
            raise QueryError("INVALID_TYPE", f"sObject type '{obj}' is not supported.")
        fields = ["Id"]
        if reader.accept("("):
            fields = [reader.take()]
            while reader.accept(","):
                fields.append(reader.take())
            reader.take(")")
        for name in fields:
            _check_field(schema, obj, name)
        specs.append((obj, fields))
        if not reader.accept(","):
            return specs


def _check_field(schema: Schema, obj: str, name: str) -> None:
    head, _, tail = name.partition(".")
    if tail:
        relation = schema[obj].get(f"{head}Id")
        if relation is None or not relation.refs:
            raise QueryError("INVALID_FIELD", f"Didn't understand relationship '{head}'")
        _check_field(schema, relation.refs[0], tail)
    elif name not in schema[obj]:
        raise QueryError("INVALID_FIELD", f"No such column '{name}' on entity '{obj}'.")


def run_sosl(q: str, schema: Schema, db: Db, api_version: str) -> list[dict[str, Any]]:
    text, rest = _braced(q)
    groups = _terms(text)
    reader = _Reader(_tokens(rest))
    scope = "ALL"
    if reader.accept("IN"):
        scope = reader.take().upper()
        reader.take("FIELDS")
    reader.take("RETURNING")
    specs = _returning(reader, schema)
    limit = int(reader.take()) if reader.accept("LIMIT") else 2000
    if reader.peek():
        raise QueryError("MALFORMED_SEARCH", f"unexpected {reader.peek()!r}")
    rows: list[dict[str, Any]] = []
    for obj, fields in specs:
        for record in db.get(obj, {}).values():
            if len(rows) < limit and _matches(record, schema[obj], scope, groups):
                rows.append(_row(obj, record, fields, schema, db, api_version))
    return rows


def _matches(
    record: Mapping[str, Any], fields: Mapping[str, Field], scope: str, groups: list[list[str]]
) -> bool:
    searched = [f for f in fields.values() if _in_scope(f, scope) and record.get(f.name)]
    return any(
        all(any(_term_hits(t, f, str(record[f.name])) for f in searched) for t in group)
        for group in groups
    )


def _in_scope(field: Field, scope: str) -> bool:
    if scope == "PHONE":
        return field.kind == "phone"
    if scope == "NAME":
        return field.name in ("Name", "FirstName", "LastName", "Company")
    return field.kind in ("string", "textarea", "phone", "email", "url", "picklist")


def _runs(text: str) -> set[str]:
    return {run for run in re.findall(r"\d+", text) if len(run) >= 3}


def _term_hits(term: str, field: Field, value: str) -> bool:
    if field.kind == "phone":
        digits = re.sub(r"\D", "", term)
        return bool(digits) and (
            digits == re.sub(r"\D", "", value) or bool(_runs(term) & _runs(value))
        )
    return term.lower() in value.lower()


def _row(
    obj: str,
    record: Mapping[str, Any],
    fields: list[str],
    schema: Schema,
    db: Db,
    api_version: str,
) -> dict[str, Any]:
    row: dict[str, Any] = {"attributes": _attributes(obj, record["Id"], api_version)}
    for name in fields:
        head, _, tail = name.partition(".")
        if not tail:
            row[name] = record.get(name)
            continue
        target = schema[obj][f"{head}Id"].refs[0]
        parent = db.get(target, {}).get(str(record.get(f"{head}Id")))
        row[head] = (
            None
            if parent is None
            else {
                "attributes": _attributes(target, parent["Id"], api_version),
                tail: parent.get(tail),
            }
        )
    return row


def _attributes(obj: str, record_id: str, api_version: str) -> dict[str, str]:
    return {"type": obj, "url": f"/services/data/v{api_version}/sobjects/{obj}/{record_id}"}


# --- SOQL -----------------------------------------------------------------------------------


def _literal(token: str) -> Any:
    if token.startswith("'"):
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    if token.lower() in ("true", "false"):
        return token.lower() == "true"
    if token.lower() == "null":
        return None
    if re.fullmatch(r"\d+(?:\.\d+)?", token):
        return float(token) if "." in token else int(token)
    raise QueryError("MALFORMED_QUERY", f"not a value: {token}")


def _condition(reader: _Reader, fields: Mapping[str, Field]) -> Callable[[Mapping[str, Any]], bool]:
    name = reader.take()
    if name not in fields:
        raise QueryError("INVALID_FIELD", f"No such column '{name}'")
    if reader.accept("IN"):
        reader.take("(")
        values = [_literal(reader.take())]
        while reader.accept(","):
            values.append(_literal(reader.take()))
        reader.take(")")
        return lambda r: r.get(name) in values
    op = reader.take()
    value = _literal(reader.take())
    if op == "=":
        return lambda r: r.get(name) == value
    if op == "!=":
        return lambda r: r.get(name) != value
    raise QueryError("MALFORMED_QUERY", f"unsupported operator {op}")


def run_soql(q: str, schema: Schema, db: Db, api_version: str) -> list[dict[str, Any]]:
    reader = _Reader(_tokens(q))
    reader.take("SELECT")
    selected = [reader.take()]
    while reader.accept(","):
        selected.append(reader.take())
    reader.take("FROM")
    obj = reader.take()
    if obj not in schema:
        raise QueryError("INVALID_TYPE", f"sObject type '{obj}' is not supported.")
    for name in selected:
        _check_field(schema, obj, name)
    conditions = []
    if reader.accept("WHERE"):
        conditions.append(_condition(reader, schema[obj]))
        while reader.accept("AND"):
            conditions.append(_condition(reader, schema[obj]))
    records = [r for r in db.get(obj, {}).values() if all(c(r) for c in conditions)]
    if reader.accept("ORDER"):
        reader.take("BY")
        key = reader.take()
        descending = reader.accept("DESC") or (reader.accept("ASC") and False)
        records.sort(key=lambda r: (r.get(key) is None, str(r.get(key))), reverse=descending)
    if reader.accept("LIMIT"):
        records = records[: int(reader.take())]
    if reader.peek():
        raise QueryError("MALFORMED_QUERY", f"unexpected {reader.peek()!r}")
    return [_row(obj, r, selected, schema, db, api_version) for r in records]
