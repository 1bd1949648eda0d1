"""The checking pipeline: declarations, resolution, types, optimisation, in that order."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from crmrules import ast
from crmrules import types as t
from crmrules.compiler.campaigns import check_campaign
from crmrules.compiler.dependencies import dependencies, used_names
from crmrules.compiler.fold_constants import fold_constants
from crmrules.compiler.resolve import CUSTOMERS, Names, Scope, resolve
from crmrules.compiler.simplify import simplify
from crmrules.compiler.testcases import check_test
from crmrules.compiler.typecheck import typecheck
from crmrules.errors import CrmRulesError, RuleTypeError, UnknownNameError, raise_all
from crmrules.schema import Schema

# The optimiser: each pass is `expr -> expr`, idempotent and meaning-preserving.
OPTIMISATIONS: tuple[Callable[[ast.Expr], ast.Expr], ...] = (fold_constants, simplify)


@dataclass
class Program:
    """A checked rule file: typed, optimised declarations ready for a backend."""

    schema: Schema
    segments: dict[str, ast.SegmentDecl] = field(default_factory=dict)
    attributes: dict[str, ast.AttributeDecl] = field(default_factory=dict)
    campaigns: dict[str, ast.CampaignDecl] = field(default_factory=dict)
    tests: list[ast.TestDecl] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def attribute_type(self, name: str) -> t.Type:
        """The type of a declared attribute."""
        return self.attributes[name].body.type


def optimise(expr: ast.Expr) -> ast.Expr:
    """Run every optimisation pass in order."""
    for optimisation in OPTIMISATIONS:
        expr = optimisation(expr)
    return expr


def check(rules: ast.RuleFile, schema: Schema, optimize: bool = True) -> Program:
    """Check a parsed rule file against a schema; raise every error found, together."""
    errors: list[CrmRulesError] = []
    program = Program(schema)
    clock = time.perf_counter()
    names = Names(schema)
    bodies: dict[str, tuple[ast.Node, ast.Expr]] = {}
    for decl in rules.declarations:
        if isinstance(decl, (ast.SegmentDecl, ast.AttributeDecl)):
            if decl.name in bodies or decl.name in schema.columns(CUSTOMERS) or decl.name in ("now", "today"):
                errors.append(UnknownNameError(f"`{decl.name}` is already defined", decl.span,
                                               "give it another name", code="E0105"))
                continue
            bodies[decl.name] = (decl, decl.body)
            (names.segments if isinstance(decl, ast.SegmentDecl) else names.attributes).add(decl.name)
    order, failed = dependencies(bodies, errors)  # names on a cycle are not checked further
    attribute_types: dict[str, t.Type] = {}
    for name in order:
        decl, body = bodies[name]
        local: list[CrmRulesError] = []
        body = resolve(body, names, Scope(), local)
        if name in failed or used_names(bodies[name][1]) & failed:
            failed.add(name)
            errors.extend(local)
            continue
        if not local:
            body = typecheck(body, schema, attribute_types, local)
            if not local and isinstance(decl, ast.SegmentDecl) and body.type not in (t.BOOL, t.NULL):
                local.append(RuleTypeError(f"a segment needs a condition (bool), got {body.type}",
                                           body.span, "compare the value, e.g. `x > 0`"))
        errors.extend(local)
        if local:
            failed.add(name)
            continue
        if optimize:
            body = optimise(body)
        if isinstance(decl, ast.AttributeDecl):
            attribute_types[name] = body.type
            program.attributes[name] = dataclasses.replace(decl, body=body)
        else:
            program.segments[name] = dataclasses.replace(decl, body=body)
    program.timings["check"] = time.perf_counter() - clock
    # keep declaration order for listings
    program.segments = {d.name: program.segments[d.name] for d in rules.declarations
                        if isinstance(d, ast.SegmentDecl) and d.name in program.segments}
    if not errors:
        for decl in rules.declarations:
            if isinstance(decl, ast.CampaignDecl):
                checked = check_campaign(decl, names, schema, attribute_types, errors)
                if checked is not None:
                    program.campaigns[decl.name] = checked
            elif isinstance(decl, ast.TestDecl):
                if check_test(decl, names, schema, errors):
                    program.tests.append(decl)
    raise_all(errors)
    return program
