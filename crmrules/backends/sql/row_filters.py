"""The rows an aggregate CTE reads: its WHERE, built from the aggregates' own row conditions.

Each aggregate of a CTE counts the rows meeting its condition (`CASE WHEN c THEN
value END`); rows that no aggregate counts are filtered out first (`WHERE c1 OR
c2 ...`). These functions make that WHERE as small as what it must keep, and
then what it lets the aggregates and the planner leave out:

- a condition implied by another one is dropped from the disjunction
  (`c OR (c AND value IS NOT NULL)` is `c`);
- when one condition is left, the WHERE already does its part of each aggregate's
  `CASE WHEN` (`COUNT(CASE WHEN c THEN 1 END)` is `COUNT(1)` over the rows `c` keeps,
  `SUM(CASE WHEN c AND d THEN x END)` is `SUM(CASE WHEN d THEN x END)`);
- a condition that implies visibility (`created_at <= now`, from a time window)
  lets the CTE read the table itself instead of its visible rows;
- a conjunct every condition has, such as `any(items where ...)` of an order,
  can become one semi-join (`id IN (SELECT ...)`) instead of a join with
  per-order aggregates (`semi_join_hit`, `without`).

Everything here works on trees the planner built for this one query and owns.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp


def conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    """The operands of a condition's top-level AND, through parentheses (the condition itself if none)."""
    condition = condition.unnest()
    if isinstance(condition, exp.And):
        return [*conjuncts(condition.this), *conjuncts(condition.expression)]
    return [condition]


def disjuncts(condition: exp.Expression) -> list[exp.Expression]:
    """The operands of a condition's top-level OR, through parentheses."""
    condition = condition.unnest()
    if isinstance(condition, exp.Or):
        return [*disjuncts(condition.this), *disjuncts(condition.expression)]
    return [condition]


def implies(condition: exp.Expression, other: exp.Expression) -> bool:
    """Whether `condition` being true makes `other` true, read off their shapes: every conjunct of `other`
    is one of `condition`'s (a sufficient test, never a wrong yes)."""
    parts = conjuncts(condition)
    return all(any(part == mine for mine in parts) for part in conjuncts(other))


def reduced(conditions: Sequence[exp.Expression]) -> list[exp.Expression]:
    """The conditions whose OR keeps the same rows, without repeats and without any that implies another
    (`c OR (c AND d)` is `c`)."""
    distinct: list[exp.Expression] = []
    for condition in conditions:
        if condition not in distinct:
            distinct.append(condition)
    return [c for i, c in enumerate(distinct)
            if not any(j != i and implies(c, other) and not (implies(other, c) and j > i)
                       for j, other in enumerate(distinct))]


def implies_visible(condition: exp.Expression, visible: exp.Expression) -> bool:
    """Whether `condition` keeps only rows that `visible` keeps: one of its conjuncts is one of the
    alternatives of `visible` (`created_at <= now` of a window, in `created_at IS NULL OR created_at <= now`)."""
    alternatives = disjuncts(visible)
    return any(part == alternative for part in conjuncts(condition) for alternative in alternatives)


def without_case(aggregate: exp.Expression, condition: exp.Expression) -> exp.Expression:
    """An aggregate (aliased) whose argument is `CASE WHEN c THEN value END`, with the conjuncts of `condition`
    left out of `c` (all of `c`: reading `value` itself): right when the query reads only rows where
    `condition` is true. Any other aggregate is returned as it is."""
    function = aggregate.this if isinstance(aggregate, exp.Alias) else aggregate
    if not isinstance(function, (exp.Count, exp.Sum, exp.Min, exp.Max)):
        return aggregate
    case = function.this
    if not (isinstance(case, exp.Case) and case.args.get("default") is None and len(case.args.get("ifs") or []) == 1):
        return aggregate
    branch = case.args["ifs"][0]
    known, parts = conjuncts(condition), conjuncts(branch.this)
    if not all(any(part == k for part in parts) for k in known):
        return aggregate
    rest = [part for part in parts if not any(part == k for k in known)]
    if not rest:
        function.set("this", branch.args["true"])
    elif len(rest) < len(parts):
        branch.set("this", exp.and_(*rest, copy=False))
    return aggregate


def semi_join_hit(conditions: Sequence[exp.Expression | None], hit: exp.Expression) -> bool:
    """Whether every row condition has `hit` as a conjunct: then rows without it are read by no aggregate."""
    return bool(conditions) and all(c is not None and any(part == hit for part in conjuncts(c)) for c in conditions)


def without(tree: exp.Expression, hit: exp.Expression, true: exp.Expression) -> exp.Expression:
    """`tree` with every occurrence of `hit` known true: dropped from the AND it is part of, else replaced by
    `true` (the tree is changed in place and returned; it may be the replacement itself)."""
    for found in [node for node in tree.walk() if type(node) is type(hit) and node == hit]:
        parent = found.parent
        if isinstance(parent, exp.And):
            other = parent.expression if parent.this is found else parent.this
            if parent is tree:
                tree = other
                other.pop()
            else:
                parent.replace(other)
                if isinstance(other, exp.Paren) and isinstance(other.parent, exp.Paren):
                    other.parent.replace(other)  # `((x))` is `(x)`
        elif found is tree:
            tree = true.copy()
        else:
            found.replace(true.copy())
    return tree


def reads_only_hits(trees: Sequence[exp.Expression], table_alias: str, hit: exp.Expression) -> bool:
    """Whether every column of `table_alias` the trees read is inside an occurrence of `hit`."""
    hits = reads = 0
    for tree in trees:
        for node in tree.walk():
            if isinstance(node, exp.Column):
                reads += node.table == table_alias
            elif type(node) is type(hit) and node == hit:
                hits += 1
    per_hit = sum(1 for column in hit.find_all(exp.Column) if column.table == table_alias)
    return reads == hits * per_hit
