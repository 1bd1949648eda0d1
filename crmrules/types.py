"""The type lattice of the language: scalars, lists of a scalar, and null."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scalar(StrEnum):
    """The scalar types, spelled as in schema files and error messages."""

    BOOL = "bool"
    INT = "int"
    DECIMAL = "decimal"
    STRING = "string"
    DATE = "date"
    TIMESTAMP = "timestamp"
    DURATION = "duration"
    NULL = "null"


@dataclass(frozen=True, slots=True)
class Type:
    """A value type: a scalar, or a list whose elements have a scalar type."""

    scalar: Scalar
    is_list: bool = False

    def __str__(self) -> str:
        return f"list[{self.scalar}]" if self.is_list else str(self.scalar)


BOOL = Type(Scalar.BOOL)
INT = Type(Scalar.INT)
DECIMAL = Type(Scalar.DECIMAL)
STRING = Type(Scalar.STRING)
DATE = Type(Scalar.DATE)
TIMESTAMP = Type(Scalar.TIMESTAMP)
DURATION = Type(Scalar.DURATION)
NULL = Type(Scalar.NULL)

NUMERIC = frozenset({INT, DECIMAL})
TEMPORAL = frozenset({DATE, TIMESTAMP})


def list_of(element: Type) -> Type:
    """The list type whose elements have the given scalar type."""
    return Type(element.scalar, is_list=True)


def element_of(list_type: Type) -> Type:
    """The element type of a list type."""
    return Type(list_type.scalar)


def parse_type(text: str) -> Type | None:
    """`decimal` or `list[string]` as a Type, or None when it names no type."""
    text = text.strip()
    if text.startswith("list[") and text.endswith("]"):
        inner = parse_type(text[5:-1])
        return list_of(inner) if inner and not inner.is_list and inner != NULL else None
    try:
        return Type(Scalar(text))
    except ValueError:
        return None


def unify(left: Type, right: Type) -> Type | None:
    """The common type two values can be compared or combined as, or None."""
    if left == right:
        return left
    if left == NULL:
        return right
    if right == NULL:
        return left
    if {left, right} == NUMERIC:
        return DECIMAL
    if {left, right} == TEMPORAL:
        return TIMESTAMP
    if left.is_list and right.is_list:
        inner = unify(element_of(left), element_of(right))
        return list_of(inner) if inner else None
    return None


def is_orderable(t: Type) -> bool:
    """Whether `<`, `between` and min/max apply to values of this type."""
    return not t.is_list and t.scalar in {Scalar.INT, Scalar.DECIMAL, Scalar.STRING,
                                          Scalar.DATE, Scalar.TIMESTAMP, Scalar.NULL}
