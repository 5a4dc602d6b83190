"""A parser and evaluator for the part of OTTL's boolean expressions that collector-config ships, over spans.

No collector binary runs here, so the tail-sampling condition is read by this instead: boolean expressions with
`and`, `or`, `not` and parentheses over comparisons of span paths (`attributes["key"]`, `name`, `kind`,
`status.code`), numbers, strings, booleans, `nil` and enums, compared the way OTTL's comparison rules say
(pkg/ottl/LANGUAGE.md): int and float numerically, nil equal only to nil, ordering across types false. Anything
else (converters, other paths) is a parse error rather than a guess.
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Span", "compile_condition", "expand_env"]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<float>[-+]?\d*\.\d+(?:[eE][-+]?\d+)?)
    | (?P<int>[-+]?\d+)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<op>==|!=|<=|>=|<|>)
    | (?P<punct>[()\[\].])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_SPAN_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Span:
    """What the span context's paths read: the span's attributes, name, kind and status code (OTLP numbers)."""

    attributes: Mapping[str, Any]
    name: str = ""
    kind: int = _SPAN_KINDS["SPAN_KIND_CLIENT"]
    status_code: int = _STATUS_CODES["STATUS_CODE_UNSET"]


Value = Callable[[Span], Any]


def expand_env(text: str, environ: Mapping[str, str] | None = None) -> str:
    """The collector's ${env:NAME} and ${env:NAME:-default} references, expanded inside a string."""
    env = os.environ if environ is None else environ

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is None:
            raise KeyError(f"{name} is not set and ${{env:{name}}} has no default")
        return default

    return _ENV.sub(value, text)


def compile_condition(text: str) -> Callable[[Span], bool]:
    """Parses one OTTL condition; the result tells whether a span satisfies it."""
    parser = _Parser(_tokens(text), text)
    condition = parser.expression()
    parser.expect_end()
    return condition


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise SyntaxError(f"cannot read {text[position:]!r} in {text!r}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return tokens


def _compare(op: str, left: Any, right: Any) -> bool:
    both_numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
    if not (both_numbers or type(left) is type(right)):
        # Values of different types are never equal, and never ordered.
        return op == "!="
    if left is None:
        return _OPERATORS[op](0, 0) if op in ("==", "!=") else False
    return _OPERATORS[op](left, right)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise SyntaxError(f"unexpected end of {self.text!r}")
        self.position += 1
        return token

    def accept(self, value: str) -> bool:
        if self.peek() is not None and self.peek()[1] == value:  # type: ignore[index]
            self.position += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            raise SyntaxError(f"expected {value!r} at {self.peek()!r} in {self.text!r}")

    def expect_end(self) -> None:
        if self.peek() is not None:
            raise SyntaxError(f"unexpected {self.peek()!r} in {self.text!r}")

    def expression(self) -> Callable[[Span], bool]:
        terms = [self.term()]
        while self.accept("or"):
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else lambda span: any(t(span) for t in terms)

    def term(self) -> Callable[[Span], bool]:
        factors = [self.factor()]
        while self.accept("and"):
            factors.append(self.factor())
        return factors[0] if len(factors) == 1 else lambda span: all(f(span) for f in factors)

    def factor(self) -> Callable[[Span], bool]:
        if self.accept("not"):
            inner = self.factor()
            return lambda span: not inner(span)
        if self.accept("("):
            inner = self.expression()
            self.expect(")")
            return inner
        left = self.value()
        token = self.peek()
        if token is None or token[0] != "op":
            literal = left(Span({}))
            if isinstance(literal, bool):
                return lambda span: literal
            raise SyntaxError(f"expected a comparison after {self.tokens[self.position - 1]!r} in {self.text!r}")
        op = self.take()[1]
        right = self.value()
        return lambda span: _compare(op, left(span), right(span))

    def value(self) -> Value:
        kind, text = self.take()
        if kind == "float":
            number = float(text)
            return lambda span: number
        if kind == "int":
            integer = int(text)
            return lambda span: integer
        if kind == "string":
            string = bytes(text[1:-1], "utf-8").decode("unicode_escape")
            return lambda span: string
        if kind != "word":
            raise SyntaxError(f"unexpected {text!r} in {self.text!r}")
        constants: dict[str, Any] = {"nil": None, "true": True, "false": False, **_STATUS_CODES, **_SPAN_KINDS}
        if text in constants:
            constant = constants[text]
            return lambda span: constant
        return self.path(text)

    def path(self, first: str) -> Value:
        if first == "attributes":
            self.expect("[")
            kind, key = self.take()
            if kind != "string":
                raise SyntaxError(f"attributes[] takes a string key, not {key!r}, in {self.text!r}")
            self.expect("]")
            name = key[1:-1]
            return lambda span: span.attributes.get(name)
        if first == "name":
            return lambda span: span.name
        if first == "kind":
            return lambda span: span.kind
        if first == "status" and self.accept(".") and self.accept("code"):
            return lambda span: span.status_code
        raise SyntaxError(f"{first!r} is not a span path this evaluator knows, in {self.text!r}")
