r"""The regular expressions `matches` accepts: a subset every engine runs in linear time and reads alike.

Backtracking engines (Python's `re`, which the in-memory engines and SQLite use,
and Java's, which Spark uses) take exponential time on patterns such as
`(a+)+$` or `(a|aa)+$`. Rather than trust each engine, a pattern is checked
once, here: no repetition inside an unbounded repetition, no alternation inside
an unbounded repetition, no back-references, no look-around, at most 1,000
characters. What remains (literals, classes, `.`, anchors, `*`, `+`, `?`,
`{m,n}`, alternation, groups, `(?i)`) is matched in linear time by every
engine.

To mean the same in each, every engine runs the pattern `canonical_pattern` writes
back from the parse: no flags and no class shorthands, which engines read their
own way (RE2 folds `(?i)` by Unicode, so the Kelvin sign matches `k`; PostgreSQL
has no `(?i:...)`; `\w` follows a locale or Unicode here and there). Case
insensitivity and `\d \w \s` are ASCII-only, as Python's `re.ASCII`: `(?i)k` is
written `[Kk]`, `[a-c]` under `(?i)` `[A-Ca-c]`, `\w` `[0-9A-Z_a-z]`, and a class
holding `\W` is written as the complement of the ASCII characters it leaves out.
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
    found = _walk(parsed, inside_unbounded=False)
    if found is None:
        try:
            _Writer(parsed.state.flags).items(parsed)
        except _Unsupported as refused:
            return str(refused)
    return found


def canonical_pattern(pattern: str) -> str:
    """`pattern` (one `unsafe_regex` accepts) as every engine reads it alike: see the module's docstring.

    Anchors and `.` are kept as written (`(?m)` and `(?s)` stay as flags)."""
    parsed = sre_parse.parse(pattern)
    flags = parsed.state.flags & (re.MULTILINE | re.DOTALL)
    prefix = f"(?{'m' * bool(flags & re.MULTILINE)}{'s' * bool(flags & re.DOTALL)})" if flags else ""
    return prefix + _Writer(parsed.state.flags).items(parsed)


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


class _Unsupported(Exception):
    """A construct the canonical form cannot write (a class matching nothing, a possessive repetition)."""


_ASCII = range(128)
_SETS = {"d": frozenset(range(48, 58)), "s": frozenset(map(ord, " \t\n\r\f\v")),
         "w": frozenset([*range(48, 58), *range(65, 91), 95, *range(97, 123)])}
_CATEGORIES = {getattr(sre_constants, f"CATEGORY_{name}"): (_SETS[key], negated)
               for key, name_pair in {"d": ("DIGIT", "NOT_DIGIT"), "s": ("SPACE", "NOT_SPACE"),
                                      "w": ("WORD", "NOT_WORD")}.items()
               for name, negated in zip(name_pair, (False, True))}
_AT = {sre_constants.AT_BEGINNING: "^", sre_constants.AT_END: "$", sre_constants.AT_BEGINNING_STRING: r"\A",
       sre_constants.AT_END_STRING: r"\Z", sre_constants.AT_BOUNDARY: r"\b", sre_constants.AT_NON_BOUNDARY: r"\B"}
_PORTABLE_AT = (sre_constants.AT_BEGINNING, sre_constants.AT_END)
_META = frozenset("\\.^$|?*+()[]{}")
_SET_META = frozenset("\\]^-[&")  # `&&` is an intersection in Java, `[:` a POSIX class in PostgreSQL


def _other_case(code: int) -> int | None:
    char = chr(code)
    return ord(char.swapcase()) if char.isascii() and char.isalpha() else None


class _Writer:
    """Writes a parsed pattern back, with `(?i)` applied to ASCII letters and the classes spelled out."""

    def __init__(self, flags: int):
        self.ignore_case = bool(flags & re.IGNORECASE)

    def items(self, items) -> str:
        return "".join(self.item(op, argument) for op, argument in items)

    def item(self, op, argument) -> str:
        if op == sre_constants.LITERAL:
            return self.charset([(op, argument)])
        if op == sre_constants.NOT_LITERAL:
            return self.charset([(sre_constants.NEGATE, None), (sre_constants.LITERAL, argument)])
        if op == sre_constants.IN:
            return self.charset(argument)
        if op == sre_constants.ANY:
            return "[^\\n]"  # PostgreSQL's `.` also matches a newline; Python's, RE2's and Java's do not
        if op == sre_constants.AT:
            if argument not in _PORTABLE_AT:
                # `\b` is a backspace in PostgreSQL (its boundary is `\y`), `\Z` is not RE2's: no one spelling
                raise _Unsupported(f"`{_AT[argument]}` is not supported (engines spell it differently); "
                                   "use `^`, `$` or an explicit class such as `[^A-Za-z0-9_]`")
            return _AT[argument]
        if op == sre_constants.BRANCH:
            return "|".join(self.items(branch) for branch in argument[1])
        if op == sre_constants.SUBPATTERN:
            return self.group(*argument)
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            return self.repeat(op, *argument)
        raise _Unsupported(f"{str(op).lower().replace('_', ' ')}s are not supported (not every engine has them)")

    def group(self, number, add_flags, del_flags, body) -> str:
        outer = self.ignore_case
        if add_flags & re.IGNORECASE:
            self.ignore_case = True
        if del_flags & re.IGNORECASE:
            self.ignore_case = False
        scoped = "".join(f for flag, f in ((re.MULTILINE, "m"), (re.DOTALL, "s")) if add_flags & flag)
        removed = "".join(f for flag, f in ((re.MULTILINE, "m"), (re.DOTALL, "s")) if del_flags & flag)
        try:
            inner = self.items(body)
        finally:
            self.ignore_case = outer
        if scoped or removed:
            return f"(?{scoped}{'-' + removed if removed else ''}:{inner})"
        return f"({inner})" if number is not None else f"(?:{inner})"

    def repeat(self, op, low, high, body) -> str:
        inner = self.items(body)
        single = len(body) == 1 and body[0][0] in (sre_constants.LITERAL, sre_constants.NOT_LITERAL,
                                                   sre_constants.IN, sre_constants.ANY, sre_constants.SUBPATTERN)
        if not single:
            inner = f"(?:{inner})"
        unbounded = high == sre_constants.MAXREPEAT
        if low > 255 or (not unbounded and high > 255):
            raise _Unsupported("a repetition count past 255 is not supported (PostgreSQL's limit)")
        count = {(0, True): "*", (1, True): "+"}.get((low, unbounded))
        if count is None:
            count = ("?" if (low, high) == (0, 1) else f"{{{low}}}" if low == high
                     else f"{{{low},}}" if unbounded else f"{{{low},{high}}}")
        return inner + count + ("?" if op == sre_constants.MIN_REPEAT else "")

    def charset(self, items) -> str:
        """A literal or a class as a set of characters: the ASCII ones listed, the others as written."""
        ascii_set: set[int] = set()
        high: list[tuple[int, int]] = []
        negated = every_high = False
        for op, argument in items:
            if op == sre_constants.NEGATE:
                negated = True
            elif op == sre_constants.CATEGORY:
                members, complement = _CATEGORIES[argument]
                ascii_set.update(set(_ASCII) - members if complement else members)
                every_high = every_high or complement  # `\W`, `\S`, `\D` hold every non-ASCII character
            else:
                low, top = (argument, argument) if op == sre_constants.LITERAL else argument
                for code in range(low, min(top, 127) + 1):
                    ascii_set.add(code)
                    if self.ignore_case and (other := _other_case(code)) is not None:
                        ascii_set.add(other)
                if top > 127:
                    high.append((max(low, 128), top))
        if every_high:  # the set is every character but some ASCII ones: write those, negated
            negated, ascii_set, high = not negated, set(_ASCII) - ascii_set, []
        if not negated and len(ascii_set) + len(high) == 1 and (not high or high[0][0] == high[0][1]):
            code = next(iter(ascii_set)) if ascii_set else high[0][0]
            return "\\" + chr(code) if chr(code) in _META else chr(code)
        if not ascii_set and not high:
            if negated:  # every character: no class spells it in every engine
                return "(?:[^\n]|\n)"
            raise _Unsupported("a class that matches no character is not supported")
        return "[" + "^" * negated + _ranges(sorted(ascii_set)) + "".join(
            _set_char(a) if a == b else f"{_set_char(a)}-{_set_char(b)}" for a, b in high) + "]"


def _set_char(code: int) -> str:
    return "\\" + chr(code) if chr(code) in _SET_META else chr(code)


def _ranges(codes: list[int]) -> str:
    """Sorted code points as a class body: runs of three or more as `a-c`."""
    out, i = [], 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        if j - i >= 2:
            out.append(f"{_set_char(codes[i])}-{_set_char(codes[j])}")
        else:
            out.extend(_set_char(c) for c in codes[i:j + 1])
        i = j + 1
    return "".join(out)
