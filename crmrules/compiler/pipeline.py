"""The checking pipeline: declarations, resolution, types, optimisation, in that order."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from crmrules import ast
from crmrules import types as t
from crmrules.compiler.campaigns import check_campaign, check_limit
from crmrules.compiler.catalogue_cache import CATALOGUE_CACHE, Checked
from crmrules.compiler.dependencies import dependencies, used_names
from crmrules.compiler.fold_constants import fold_constants
from crmrules.compiler.functions import FUNCTIONS
from crmrules.compiler.known_values import known_values, literal_strings
from crmrules.compiler.lower import lower
from crmrules.compiler.limits import MAX_EXPANDED_DEPTH, MAX_EXPANDED_NODES, expanded_size
from crmrules.compiler.resolve import CUSTOMERS, Names, Scope, resolve
from crmrules.compiler.simplify import simplify
from crmrules.compiler.testcases import check_test
from crmrules.compiler.typecheck import typecheck
from crmrules.errors import CrmRulesError, RuleSyntaxError, RuleTypeError, UnknownNameError, raise_all
from crmrules.schema import Schema

# The optimiser: each pass is `expr -> expr`, idempotent and meaning-preserving.
OPTIMISATIONS: tuple[Callable[[ast.Expr], ast.Expr], ...] = (fold_constants, simplify)


@dataclass
class Program:
    """A checked rule file: typed, optimised declarations ready for a backend."""

    schema: Schema
    segments: dict[str, ast.SegmentDecl] = field(default_factory=dict)
    attributes: dict[str, ast.AttributeDecl] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDecl] = field(default_factory=dict)
    # the names the rule file itself declares, in file order; the rest came from the catalogue
    own: list[str] = field(default_factory=list)
    campaigns: dict[str, ast.CampaignDecl] = field(default_factory=dict)
    limits: dict[str, ast.LimitDecl] = field(default_factory=dict)  # by channel
    tests: list[ast.TestDecl] = field(default_factory=list)
    # what is probably a mistake but may be right (a literal no data has shown yet): reported, not raised
    warnings: list[CrmRulesError] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def attribute_type(self, name: str) -> t.Type:
        """The type of a declared attribute."""
        return self.attributes[name].body.type


def optimise(expr: ast.Expr) -> ast.Expr:
    """Run every optimisation pass in order."""
    for optimisation in OPTIMISATIONS:
        expr = optimisation(expr)
    return expr


_NAMED = (ast.SegmentDecl, ast.AttributeDecl, ast.FunctionDecl)
_RESERVED = {"now", "today", "ntile", "score", *FUNCTIONS, *ast.AggFunc}


def check(rules: ast.RuleFile, schema: Schema, optimize: bool = True,
          prelude: ast.RuleFile | Callable[[], ast.RuleFile] | None = None,
          roots: tuple[str, ...] = (), learned: dict[tuple[str, str], frozenset[str]] | None = None,
          lowered: bool = True) -> Program:
    """Check a parsed rule file against a schema; raise every error found, together.

    `prelude` is the catalogue (or a function reading it, called only when some name needs
    it): its declarations are usable by name, a rule file's own declaration of the same name
    replaces it, and only those the rules (or `roots`) use are checked. `learned` adds values seen in the data to open columns' known values.
    """
    errors: list[CrmRulesError] = []
    program = Program(schema)

    def finish(body: ast.Expr) -> ast.Expr:
        body = optimise(body) if optimize else body
        return lower(body, schema) if lowered else body

    clock = time.perf_counter()
    names = Names(schema)
    bodies: dict[str, tuple[ast.Node, ast.Expr]] = {}
    own_used: dict[str, set[str]] = {}
    for decl in rules.declarations:
        if isinstance(decl, (ast.SegmentDecl, ast.AttributeDecl, ast.FunctionDecl)):
            if decl.name in bodies or decl.name in schema.columns(CUSTOMERS) or decl.name in _RESERVED:
                errors.append(UnknownNameError(f"`{decl.name}` is already defined", decl.span,
                                               "give it another name", code="E0105"))
                continue
            bodies[decl.name] = (decl, _uses(decl))
            own_used[decl.name] = used_names(bodies[decl.name][1])  # walked once, asked three times
            program.own.append(decl.name)
    if callable(prelude):
        # reading the catalogue costs a few ms: only when a name is neither the file's nor the schema's
        prelude = prelude() if roots or _names_elsewhere(rules, bodies, schema, own_used) else None
    if prelude is not None:
        # campaigns and tests may name catalogue segments and attributes too
        mentioned = set(roots)
        for decl in rules.declarations:
            if isinstance(decl, ast.CampaignDecl):
                mentioned |= {n.name for n in ast.walk(decl) if isinstance(n, (ast.Name, ast.Call))}
            elif isinstance(decl, ast.TestDecl):
                mentioned.add(decl.segment)
        _add_prelude(prelude, bodies, schema, tuple(mentioned), own_used)
    for name, (decl, _) in bodies.items():
        match decl:
            case ast.SegmentDecl():
                names.segments.add(name)
            case ast.AttributeDecl():
                names.attributes.add(name)
                if isinstance(decl.body, ast.Literal):
                    names.constants[name] = decl.body
            case ast.FunctionDecl():
                names.functions[name] = decl
    if prelude is not None:
        for d in prelude.declarations:
            if isinstance(d, _NAMED) and d.name not in bodies:
                (names.elsewhere_functions if isinstance(d, ast.FunctionDecl) else names.elsewhere).add(d.name)
    order, failed = dependencies(  # names on a cycle are not checked further
        bodies, errors, lambda decl, body: own_used[decl.name] if decl.name in own_used else CATALOGUE_CACHE.used(decl, body))
    attribute_types: dict[str, t.Type] = {}
    attribute_values: dict[str, frozenset[str]] = {}
    expanded: dict[str, tuple[int, int]] = {}  # (nodes, depth) with every reference written out
    # catalogue declarations checked before under the same schema are reused, unless they reach a name of the file's
    cached = CATALOGUE_CACHE.entries(schema, learned, optimize, lowered) if prelude is not None else None
    tainted = set(program.own)
    for name in order:
        decl, body = bodies[name]
        local: list[CrmRulesError] = []
        reusable = cached is not None and name not in tainted
        if reusable and CATALOGUE_CACHE.used(decl, body) & (tainted | failed):
            tainted.add(name)
            reusable = False
        hit = cached.get(name) if reusable else None
        if hit is not None and hit.source is decl:
            _reuse(hit, program, attribute_types, attribute_values, expanded)
            continue
        if isinstance(decl, ast.FunctionDecl):
            # checked for names here; types only where it is called, with the arguments' types
            placeholders = tuple((p.name, ast.Literal(value=None, span=p.span), "*") for p in decl.params)
            resolve(decl.body, names, Scope(params=placeholders, function=name), local)
            errors.extend(local)
            if local:
                failed.add(name)
            else:
                program.functions[name] = decl
                if reusable:
                    cached[name] = Checked(decl, decl, None, None, None, ())
            continue
        body = resolve(body, names, Scope(), local)
        if name in failed or (failed and used_names(bodies[name][1]) & failed):
            failed.add(name)
            errors.extend(local)
            continue
        if not local:
            body = typecheck(body, schema, attribute_types, local)
            if not local and isinstance(decl, ast.SegmentDecl) and body.type not in (t.BOOL, t.NULL):
                local.append(RuleTypeError(f"a segment needs a condition (bool), got {body.type}",
                                           body.span, "compare the value, e.g. `x > 0`"))
        if not local:
            size = expanded[name] = expanded_size(body, expanded)
            if size[0] > MAX_EXPANDED_NODES or size[1] > MAX_EXPANDED_DEPTH:
                local.append(RuleSyntaxError(
                    f"`{name}` is too large once the attributes and segments it names are written out "
                    f"({size[0]:,} nodes, {size[1]} levels; the limits are {MAX_EXPANDED_NODES:,} and "
                    f"{MAX_EXPANDED_DEPTH})", decl.span,
                    "name fewer declarations, or build the value in fewer steps", code="E0104"))
        warned = len(program.warnings)
        if not local:
            for problem in known_values(body, schema, attribute_values, learned):
                (program.warnings if problem.severity == "warning" else local).append(problem)
            if isinstance(decl, ast.AttributeDecl) and body.type == t.STRING:
                literals = literal_strings(body, attribute_values)
                if literals:
                    attribute_values[name] = literals
        errors.extend(local)
        if local:
            failed.add(name)
            continue
        body = finish(body)
        checked = dataclasses.replace(decl, body=body)
        if isinstance(decl, ast.AttributeDecl):
            attribute_types[name] = body.type
            program.attributes[name] = checked
        else:
            program.segments[name] = checked
        if reusable:
            cached[name] = Checked(decl, checked, attribute_types.get(name), attribute_values.get(name),
                                   expanded[name], tuple(program.warnings[warned:]))
    program.timings["check"] = time.perf_counter() - clock
    # keep declaration order for listings: the file's own, then the catalogue's
    listed = [*rules.declarations, *(prelude.declarations if prelude is not None else ())]
    program.segments = {d.name: program.segments[d.name] for d in listed
                        if isinstance(d, ast.SegmentDecl) and d.name in program.segments
                        and bodies[d.name][0] is d}
    # campaigns and tests are checked with the rest, all errors together; one that uses a name
    # which failed is left out, so a broken attribute is reported once, where it is declared
    for decl in rules.declarations:
        if isinstance(decl, ast.CampaignDecl) and not used_names(decl) & failed:
            checked = check_campaign(decl, names, schema, attribute_types, errors, program.warnings, finish)
            if checked is not None:
                program.campaigns[decl.name] = checked
        elif isinstance(decl, ast.LimitDecl):
            if check_limit(decl, program.limits, errors):
                program.limits[decl.channel] = decl
        elif isinstance(decl, ast.TestDecl) and decl.segment not in failed:
            if check_test(decl, names, schema, errors):
                program.tests.append(decl)
    raise_all(_blame_redefinitions(errors, bodies, set(program.own)) if prelude is not None else errors)
    return program


def _reuse(hit: Checked, program: Program, attribute_types: dict[str, t.Type],
           attribute_values: dict[str, frozenset[str]], expanded: dict[str, tuple[int, int]]) -> None:
    """Record a catalogue declaration checked before as this check would have."""
    name = hit.checked.name
    if isinstance(hit.checked, ast.FunctionDecl):
        program.functions[name] = hit.checked
        return
    program.warnings.extend(hit.warnings)
    expanded[name] = hit.expanded
    if hit.values is not None:
        attribute_values[name] = hit.values
    if isinstance(hit.checked, ast.AttributeDecl):
        attribute_types[name] = hit.value_type
        program.attributes[name] = hit.checked
    else:
        program.segments[name] = hit.checked


def _blame_redefinitions(errors: list[CrmRulesError], bodies: dict[str, tuple[ast.Node, ast.Expr]],
                         own: set[str]) -> list[CrmRulesError]:
    """An error inside a catalogue declaration caused by the user's redefinition of a name it uses,
    reported at the user's declaration (the catalogue line in the hint): that is what to change."""
    blamed = []
    for error in errors:
        source = error.span.source if error.span is not None else None
        owner = next((name for name, (decl, _) in bodies.items() if source is not None and decl.span is not None
                      and decl.span.source is source and decl.span.start <= error.span.start < decl.span.end), None)
        culprit = _user_name_reached(owner, bodies, own) if owner is not None and owner not in own else None
        if culprit is None:
            blamed.append(error)
            continue
        line, column = error.span.line_col()
        blamed.append(type(error)(
            f"your `{culprit}` replaces the catalogue's, which `{owner}` uses: {error.message}",
            bodies[culprit][0].span,
            f"at {source.name}:{line}:{column}; give yours another name, or keep the catalogue's type",
            code=error.code))
    return blamed


def _user_name_reached(start: str, bodies: dict[str, tuple[ast.Node, ast.Expr]], own: set[str]) -> str | None:
    """The first of the user's names a catalogue declaration uses, directly or through others."""
    seen, queue = {start}, [start]
    while queue:
        for name in sorted(used_names(bodies[queue.pop(0)][1]) & bodies.keys()):
            if name in own:
                return name
            if name not in seen:
                seen.add(name)
                queue.append(name)
    return None


def _names_elsewhere(rules: ast.RuleFile, bodies: dict[str, tuple[ast.Node, ast.Expr]], schema: Schema,
                     own_used: dict[str, set[str]]) -> bool:
    """Whether the rules mention a name that is not declared in them, not a column of any table and not
    built in: only then can the catalogue matter (an over-approximation: scopes are the resolver's job)."""
    known = set(bodies) | _RESERVED | {c for table in schema.tables for c in schema.columns(table)}
    for decl in rules.declarations:
        if isinstance(decl, ast.FunctionDecl):
            known |= {p.name for p in decl.params}
    for decl in rules.declarations:
        if isinstance(decl, ast.TestDecl) and decl.segment not in known:
            return True
        if isinstance(decl, _NAMED) and bodies.get(decl.name, (None,))[0] is decl:
            used = own_used[decl.name]  # what `used_names(decl)` gives: its body and parameter defaults
        else:
            used = used_names(decl) if not isinstance(decl, ast.TestDecl) else set()
        if used - known:
            return True
    return False


def _add_prelude(prelude: ast.RuleFile, bodies: dict[str, tuple[ast.Node, ast.Expr]], schema: Schema,
                 roots: tuple[str, ...], own_used: dict[str, set[str]]) -> None:
    """Add the catalogue declarations that the rule file (whose `bodies` use `own_used`) or `roots` use,
    directly or not."""
    available = CATALOGUE_CACHE.available(prelude, schema, schema.columns(CUSTOMERS))
    wanted = [name for name in roots if name in available]
    for used in own_used.values():
        wanted.extend(used & available.keys())
    while wanted:
        name = wanted.pop()
        if name in bodies:
            continue
        decl = available[name]
        bodies[name] = (decl, _uses(decl))
        wanted.extend(CATALOGUE_CACHE.used(decl, bodies[name][1]) & available.keys())


def _uses(decl: ast.Node) -> ast.Expr:
    """What a declaration's dependencies are read from: its body, and a function's parameter defaults."""
    if isinstance(decl, ast.FunctionDecl):
        defaults = tuple(p.default for p in decl.params if p.default is not None)
        return ast.ListLiteral(items=(decl.body, *defaults), span=decl.span)
    return decl.body
