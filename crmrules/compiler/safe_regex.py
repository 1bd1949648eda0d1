"""The regular expressions `matches` accepts: a subset every engine runs in linear time and reads alike.

Backtracking engines (Python's `re`, which the in-memory engines and SQLite use,
and Java's, which Spark uses) take exponential time on patterns such as
`(a+)+$` or `(a|aa)+$`. Rather than trust each engine, a pattern is checked
once, here: no repetition inside an unbounded repetition, no alternation inside
an unbounded repetition, no back-references, no look-around, at most 1,000
characters. What remains (literals, classes, `.`, anchors, `*`, `+`, `?`,
`{m,n}`, alternation, groups, `(?i)`) is matched in linear time by every
engine and means the same in each.
"""

from __future__ import annotations

import re

try:  # Python 3.11+: the parser moved into the re package
    from re import _constants as sre_constants
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - older layouts
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

MAX_PATTERN_CHARS = 1000
_REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", None))
_UNSAFE = {sre_constants.GROUPREF: "back-references", sre_constants.ASSERT: "look-ahead or look-behind",
           sre_constants.ASSERT_NOT: "look-ahead or look-behind",
           getattr(sre_constants, "GROUPREF_EXISTS", None): "conditional groups",
           getattr(sre_constants, "ATOMIC_GROUP", None): "atomic groups"}


def unsafe_regex(pattern: str) -> str | None:
    """Why a pattern is refused (invalid, or slow in some engine), or None when it is fine."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"a pattern is at most {MAX_PATTERN_CHARS:,} characters"
    try:
        re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except (re.error, OverflowError, RecursionError) as error:
        return f"invalid regular expression: {error}"
    return _walk(parsed, inside_unbounded=False)


def _walk(items, inside_unbounded: bool) -> str | None:
    for op, argument in items:
        if op in _UNSAFE and op is not None:
            return f"{_UNSAFE[op]} are not supported (not every engine has them)"
        if op in _REPEATS and op is not None:
            low, high, body = argument
            unbounded = high == sre_constants.MAXREPEAT or high > 100
            if inside_unbounded and (unbounded or _has_repeat(body)):
                return "a repetition inside a repetition (such as `(a+)+`) can take exponential time"
            if unbounded and _has_branch(body):
                return "an alternation inside a repetition (such as `(a|aa)+`) can take exponential time"
            found = _walk(body, inside_unbounded or unbounded)
        elif op == sre_constants.SUBPATTERN:
            found = _walk(argument[-1], inside_unbounded)
        elif op == sre_constants.BRANCH:
            found = next((f for branch in argument[1] if (f := _walk(branch, inside_unbounded))), None)
        else:
            found = None
        if found:
            return found
    return None


def _has_repeat(items) -> bool:
    for op, argument in items:
        if op in _REPEATS and op is not None:
            return True
        if op == sre_constants.SUBPATTERN and _has_repeat(argument[-1]):
            return True
        if op == sre_constants.BRANCH and any(_has_repeat(b) for b in argument[1]):
            return True
    return False


def _has_branch(items) -> bool:
    for op, argument in items:
        if op == sre_constants.BRANCH:
            return True
        if op == sre_constants.SUBPATTERN and _has_branch(argument[-1]):
            return True
    return False
