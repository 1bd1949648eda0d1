"""Resolve names: columns, attributes, segments, `now`, functions and aggregate sources."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from crmrules import ast
from crmrules.compiler.functions import FUNCTIONS, OPTIONAL_DEFAULTS
from crmrules.compiler.limits import MAX_EXPANDED_NODES
from crmrules.errors import CrmRulesError, RuleSyntaxError, UnknownNameError, UnsupportedFeatureError, did_you_mean
from crmrules.schema import Schema

CUSTOMERS = "customers"
TABLE_ALIASES = {"orders": "orders", "events": "events", "order_items": "order_items",
                 "items": "order_items"}
# which related tables an aggregate may range over, from the row in scope
CHILD_TABLES = {CUSTOMERS: ("orders", "order_items", "events"), "orders": ("order_items",)}
SCOPE_WORDS = {CUSTOMERS: "the customer", "orders": "an order", "order_items": "an order item",
               "events": "an event"}
# inside `orders where ...` the row is also `order`, so `order.category` can reach past a parameter
ROW_ALIASES = {"orders": "order", "order_items": "item", "events": "event"}
# node kinds whose value depends on the customer: not allowed inside a where-clause
_CUSTOMER_VALUED = (ast.Column, ast.AttributeRef, ast.SegmentRef, ast.Aggregate, ast.Ntile)


@dataclass
class Names:
    """What names mean in a rule file: the schema plus declared attributes and segments."""

    schema: Schema
    attributes: set[str] = field(default_factory=set)
    segments: set[str] = field(default_factory=set)
    functions: dict[str, ast.FunctionDecl] = field(default_factory=dict)
    # catalogue names not checked for this rule file: offered as suggestions only
    elsewhere: set[str] = field(default_factory=set)
    elsewhere_functions: set[str] = field(default_factory=set)
    # settings: attributes defined as a plain literal (`rfm_period = 365d`), the same for every row
    constants: dict[str, ast.Literal] = field(default_factory=dict)

    def customer_level(self) -> set[str]:
        """Every name usable where the customer is in scope."""
        return set(self.schema.columns(CUSTOMERS)) | self.attributes | self.segments | {"now", "today"}


@dataclass(frozen=True)
class Scope:
    """The row a name is looked up on; `row_alias` lets `event.category` name the row."""

    table: str = CUSTOMERS
    row_alias: str | None = None
    # the arguments of the function being inlined: (parameter, argument, the table the argument
    # was resolved on); parameters shadow every other name
    params: tuple[tuple[str, ast.Expr, str], ...] = ()
    function: str | None = None


def resolve(expr: ast.Expr, names: Names, scope: Scope, errors: list[CrmRulesError]) -> ast.Expr:
    """Replace names by what they denote; errors are appended, never raised."""
    resolver = _Resolver(names, errors)
    try:
        return resolver.visit(expr, scope)
    except _TooLarge as stop:
        # functions calling functions several times grow exponentially: stop early with a clear error
        errors.append(RuleSyntaxError(
            f"this rule expands to more than {MAX_EXPANDED_NODES:,} nodes once its functions are written out",
            stop.span or expr.span, "call each function fewer times, or compute a value once in an attribute",
            code="E0104"))
        return ast.Literal(value=None, span=expr.span)


class _TooLarge(Exception):
    def __init__(self, span):
        super().__init__()
        self.span = span


class _Resolver:
    def __init__(self, names: Names, errors: list[CrmRulesError]):
        self.names = names
        self.errors = errors
        self.inlining: list[str] = []  # the functions being expanded, outermost first
        self.outermost_call = None
        self.visited = 0

    def fail(self, error: CrmRulesError) -> ast.Expr:
        self.errors.append(error)
        return ast.Literal(value=None, span=error.span)

    def visit(self, node: ast.Expr, scope: Scope) -> ast.Expr:
        self.visited += 1
        if self.visited > MAX_EXPANDED_NODES:
            raise _TooLarge(self.outermost_call.span if self.outermost_call is not None else node.span)
        match node:
            case ast.Name(name=name):
                return self.name(node, name, scope)
            case ast.Path(base=base, name=name):
                return self.path(node, base, name, scope)
            case ast.Call():
                return self.call(node, scope)
            case ast.Aggregate():
                return self.aggregate(node, scope)
            case ast.Arith(op=ast.ArithOp.SUB, left=left, right=right) if scope.table == CUSTOMERS and any(
                    isinstance(side, ast.Name) and side.name in self.names.segments for side in (left, right)):
                # `a - b` with a segment on one side is a difference of segments (typecheck makes it one)
                return ast.map_children(node, lambda child: self.segment_operand(child, scope))
            case ast.SetOp() if scope.table == CUSTOMERS:
                # the operands of `|`, `&` and `-` are segments: an unknown one is an unknown segment
                return ast.map_children(node, lambda child: self.segment_operand(child, scope))
        resolved = ast.map_children(node, lambda child: self.visit(child, scope))
        if isinstance(resolved, ast.Within) and isinstance(resolved.duration, ast.Ever):
            # no window at all: every visible row counts, undated ones too
            return ast.Literal(value=True, span=node.span)
        return resolved

    def name(self, node: ast.Name, name: str, scope: Scope) -> ast.Expr:
        for param, argument, origin in scope.params:
            if param == name:
                return self.argument(node, argument, origin, scope)
        if name == "now":
            return ast.Now(span=node.span)
        if name == "today":
            return ast.Call(name="date", args=(ast.Now(span=node.span),), span=node.span)
        schema = self.names.schema
        if schema.column(scope.table, name) is not None:
            return ast.Column(table=scope.table, name=name, span=node.span)
        if scope.table == CUSTOMERS:
            if name in self.names.attributes:
                return ast.AttributeRef(name=name, span=node.span)
            if name in self.names.segments:
                return ast.SegmentRef(name=name, span=node.span)
            if name in TABLE_ALIASES:
                return self.fail(UnknownNameError(
                    f"`{name}` is a table, not a value", node.span,
                    f"use an aggregate such as `count({name})` or `any({name} where ...)`", code="E0203"))
            return self.fail(UnknownNameError(f"unknown attribute `{name}`", node.span,
                                              did_you_mean(name, self.names.customer_level() | self.names.elsewhere)))
        columns = schema.columns(scope.table)
        if name in self.names.constants:
            # a setting reads no customer, so a where-clause may use it: as its value
            return dataclasses.replace(self.names.constants[name], span=node.span)
        if name in self.names.customer_level():
            return self.fail(UnknownNameError(
                f"`{name}` belongs to the customer, but here names refer to {SCOPE_WORDS[scope.table]}",
                node.span, f"columns of {scope.table}: {', '.join(columns)}", code="E0203"))
        return self.fail(UnknownNameError(f"unknown column `{name}` of {scope.table}", node.span,
                                          did_you_mean(name, columns), code="E0203"))

    def segment_operand(self, node: ast.Expr, scope: Scope) -> ast.Expr:
        known = self.names.customer_level() | self.names.elsewhere
        if isinstance(node, ast.Name) and node.name not in known and not any(
                p == node.name for p, _, _ in scope.params):
            segments = self.names.segments | self.names.elsewhere
            return self.fail(UnknownNameError(f"unknown segment `{node.name}`", node.span,
                                              did_you_mean(node.name, segments)
                                              or "set operators combine segments: declare it with `segment`"))
        return self.visit(node, scope)

    def argument(self, node: ast.Name, argument: ast.Expr, origin: str, scope: Scope) -> ast.Expr:
        """A parameter's argument; inside a where-clause it must not depend on another row."""
        if scope.table != origin and isinstance(argument, ast.AttributeRef) and argument.name in self.names.constants:
            return dataclasses.replace(self.names.constants[argument.name], span=argument.span)
        if scope.table != origin and any(isinstance(n, _CUSTOMER_VALUED) for n in ast.walk(argument)):
            return self.fail(CrmRulesError(
                f"`{node.name}` of `{scope.function}` is used inside `{scope.table} where ...`, "
                "so its argument must be a fixed value", argument.span or node.span,
                "pass a literal such as \"coat\" or 30d", code="E0206"))
        return argument

    def path(self, node: ast.Path, base: str, name: str, scope: Scope) -> ast.Expr:
        if base == scope.row_alias or (base == "customer" and scope.table == CUSTOMERS):
            # `event.category` names the row's column even where a parameter is called `category`
            return self.name(ast.Name(name=name, span=node.span), name, dataclasses.replace(scope, params=()))
        if base in TABLE_ALIASES:
            return self.fail(UnknownNameError(
                f"`{base}.{name}` names a column of many rows", node.span,
                f"use an aggregate such as `sum({base}.{name})` or `max({base}.{name})`", code="E0203"))
        return self.fail(UnknownNameError(f"unknown name `{base}`", node.span,
                                          did_you_mean(base, [scope.row_alias or "customer"])))

    def call(self, node: ast.Call, scope: Scope) -> ast.Expr:
        declared = self.names.functions.get(node.name)
        if declared is not None:
            return self.inline(node, declared, scope)
        if node.name in ("ntile", "score"):
            return self.ntile(node, scope)
        function = FUNCTIONS.get(node.name)
        if function is None:
            return self.fail(UnknownNameError(
                f"unknown function `{node.name}`", node.span,
                did_you_mean(node.name, [*FUNCTIONS, *self.names.functions, *self.names.elsewhere_functions, "ntile",
                                         "score", *ast.AggFunc]),
                code="E0202"))
        args = [self.visit(a, scope) for a in node.args]
        if function.variadic:
            if node.kwargs or not args:
                return self.fail(CrmRulesError(f"`{node.name}` takes one or more positional arguments",
                                               node.span, code="E0205"))
            return ast.Call(name=node.name, args=tuple(args), span=node.span)
        params = tuple(ast.Param(name=p, default=None if (node.name, p) not in OPTIONAL_DEFAULTS else
                                 ast.Literal(value=OPTIONAL_DEFAULTS[node.name, p], span=node.span))
                       for p in function.params)
        bound = self.bind(node, params, scope, f"`{node.name}({', '.join(function.params)})`", args)
        if bound is None:
            return ast.Literal(value=None, span=node.span)
        return ast.Call(name=node.name, args=tuple(bound[p] for p in function.params), span=node.span)

    def bind(self, node: ast.Call, params: tuple[ast.Param, ...], scope: Scope, signature: str | None = None,
             args: list[ast.Expr] | None = None) -> dict[str, ast.Expr] | None:
        """Arguments by parameter name: positional (`args` when already resolved), then named, then
        defaults; None after an error."""
        names = [p.name for p in params]
        signature = signature or \
            f"`{node.name}({', '.join(p.name if p.default is None else p.name + ': ...' for p in params)})`"
        if len(node.args) > len(params):
            self.fail(CrmRulesError(f"`{node.name}` takes at most {len(params)} argument(s), got {len(node.args)}",
                                    node.span, signature, code="E0205"))
            return None
        resolved = args if args is not None else [self.visit(arg, scope) for arg in node.args]
        bound = dict(zip(names, resolved))
        for kwarg in node.kwargs:
            if kwarg.name not in names:
                self.fail(CrmRulesError(f"`{node.name}` has no parameter `{kwarg.name}`", kwarg.span,
                                        did_you_mean(kwarg.name, names) or f"parameters: {', '.join(names)}",
                                        code="E0205"))
                return None
            if kwarg.name in bound:
                self.fail(CrmRulesError(f"`{kwarg.name}` is given twice", kwarg.span, code="E0205"))
                return None
            bound[kwarg.name] = self.visit(kwarg.value, scope)
        for param in params:
            if param.name not in bound:
                if param.default is None:
                    self.fail(CrmRulesError(f"`{node.name}` needs its `{param.name}` argument", node.span,
                                            signature, code="E0205"))
                    return None
                bound[param.name] = self.visit(param.default, Scope())
        return bound

    def inline(self, node: ast.Call, declared: ast.FunctionDecl, scope: Scope) -> ast.Expr:
        """The function's body with its parameters bound to this call's arguments."""
        if declared.name in self.inlining:
            # the cycle itself is reported once, at the declaration; here expansion just stops
            return ast.Literal(value=None, span=node.span)
        bound = self.bind(node, declared.params, scope)
        if bound is None:
            return ast.Literal(value=None, span=node.span)
        inner = Scope(scope.table, scope.row_alias, tuple((k, v, scope.table) for k, v in bound.items()),
                      declared.name)
        if not self.inlining:
            self.outermost_call = node
        self.inlining.append(declared.name)
        try:
            return self.visit(declared.body, inner)
        finally:
            self.inlining.pop()

    def ntile(self, node: ast.Call, scope: Scope) -> ast.Expr:
        """`ntile(n, value, among:)` (NTILE, ties by id) or `score(n, value, among:)` (equal values share a score)."""
        params = (ast.Param(name="buckets"), ast.Param(name="value"),
                  ast.Param(name="among", default=ast.Literal(value=True)))
        if scope.table != CUSTOMERS:
            return self.fail(CrmRulesError(f"`{node.name}` ranks customers, so it cannot be used inside a where-clause",
                                           node.span, code="E0206"))
        bound = self.bind(node, params, scope)
        if bound is None:
            return ast.Literal(value=None, span=node.span)
        buckets = bound["buckets"]
        if not (isinstance(buckets, ast.Literal) and type(buckets.value) is int and 1 <= buckets.value <= 1000):
            return self.fail(CrmRulesError(f"`{node.name}` needs a whole number of groups between 1 and 1000",
                                           buckets.span or node.span, f"for quintiles write `{node.name}(5, value)`",
                                           code="E0205"))
        if any(isinstance(n, ast.Ntile) for part in (bound["value"], bound["among"]) for n in ast.walk(part)):
            return self.fail(UnsupportedFeatureError(
                f"`{node.name}` cannot rank by another `ntile` or `score`", node.span,
                "rank by the underlying value instead", code="E0207"))
        return ast.Ntile(buckets=buckets.value, value=bound["value"], among=bound["among"],
                         ties=node.name == "score", span=node.span)

    def aggregate(self, node: ast.Aggregate, scope: Scope) -> ast.Expr:
        table = TABLE_ALIASES.get(node.table)
        allowed = CHILD_TABLES.get(scope.table, ())
        if table is None or table not in allowed:
            hint = did_you_mean(node.table, allowed) if allowed else None
            where = SCOPE_WORDS[scope.table]
            return self.fail(UnknownNameError(
                f"`{node.table}` is not a table related to {where}", node.span,
                hint or (f"from {where} you can aggregate over {', '.join(allowed)}" if allowed else None),
                code="E0203"))
        needs_column = {ast.AggFunc.SUM, ast.AggFunc.AVG, ast.AggFunc.MIN, ast.AggFunc.MAX,
                        ast.AggFunc.DISTINCT, ast.AggFunc.TOP, ast.AggFunc.FIRST, ast.AggFunc.LAST}
        has_value = node.column is not None or node.value is not None
        if not has_value and node.func in needs_column:
            example = self.names.schema.columns(table)[-1]
            return self.fail(CrmRulesError(f"`{node.func}` needs a column", node.span,
                                           f"for example `{node.func}({node.table}.{example})`",
                                           code="E0205"))
        if has_value and node.func in (ast.AggFunc.ANY, ast.AggFunc.NONE):
            return self.fail(CrmRulesError(f"`{node.func}` takes a table, not a column", node.span,
                                           f"`{node.func}({node.table} where ...)`", code="E0205"))
        if node.by is not None and node.func != ast.AggFunc.TOP:
            return self.fail(CrmRulesError(f"`by` weighs the values of `top`, not of `{node.func}`", node.by.span,
                                           code="E0205"))
        if node.func in (ast.AggFunc.FIRST, ast.AggFunc.LAST) and scope.table != CUSTOMERS:
            return self.fail(CrmRulesError(f"`{node.func}` ranks a customer's rows, so it cannot be used inside a "
                                           "where-clause", node.span, code="E0206"))
        if node.column is not None and self.names.schema.column(table, node.column) is None:
            return self.fail(UnknownNameError(
                f"unknown column `{node.column}` of {table}", node.span,
                did_you_mean(node.column, self.names.schema.columns(table)), code="E0203"))
        inner = Scope(table, ROW_ALIASES[table], scope.params, scope.function)
        where = self.visit(node.where, inner) if node.where is not None else None
        value = self.visit(node.value, inner) if node.value is not None else None
        by = self.visit(node.by, inner) if node.by is not None else None
        return ast.Aggregate(func=node.func, table=table, column=node.column, where=where, value=value, by=by,
                             span=node.span)
