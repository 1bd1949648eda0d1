"""Bounds on what a rule may expand to, so untrusted rule text cannot make checking or running hang.

A segment or attribute that names others is stored as a reference (a DAG), but
the SQL backend writes each reference out, and a chain that doubles at every
step (`a1 = a0 + a0`, `a2 = a1 + a1`, ...) is exponential once written out;
a long chain is deep. Each declaration's size and depth with every reference
written out are computed here from its parts' (linear time), and past the
limits it is an error at check time, before any engine runs it.

The limits are far above real rules: the whole built-in catalogue's largest
declaration is under 200 nodes and 16 levels deep.
"""

from __future__ import annotations

from collections.abc import Mapping

from crmrules import ast

MAX_EXPANDED_NODES = 20_000
MAX_EXPANDED_DEPTH = 100


def expanded_size(body: ast.Expr, known: Mapping[str, tuple[int, int]]) -> tuple[int, int]:
    """(nodes, depth) of `body` with each attribute and segment reference written out; `known` holds the
    (nodes, depth) of the declarations it names (computed before, in dependency order)."""
    nodes, depth = 1, 0
    for child in ast.children(body):
        child_nodes, child_depth = expanded_size(child, known)
        nodes += child_nodes
        depth = max(depth, child_depth)
    if isinstance(body, (ast.AttributeRef, ast.SegmentRef)) and body.name in known:
        ref_nodes, ref_depth = known[body.name]
        nodes += ref_nodes
        depth = max(depth, ref_depth)
    return nodes, depth + 1
