"""The grammar and the parser: the only subpackage that imports lark."""

from crmrules.grammar.parser import parse, parse_expression

__all__ = ["parse", "parse_expression"]
