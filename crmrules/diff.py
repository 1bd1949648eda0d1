"""Who enters and who leaves: segments compared between two rule sets, or one rule set at two dates.

Each side is one `RuleSet.run` with all its segments at once: one fused query on SQL engines.
A segment that exists on one side only has `null` on the other; everyone on its side counts as
entered (it is new) or left (it is gone).
"""

from __future__ import annotations

from crmrules.errors import UnknownNameError


def compare(before: dict[str, list[str] | None], after: dict[str, list[str] | None]) -> dict:
    """`{"segments": {name: {"before", "after", "entered", "left"}}}` from each side's members (None: absent)."""
    segments = {}
    for name in dict.fromkeys([*before, *after]):
        old, new = before.get(name), after.get(name)
        old_ids, new_ids = set(old or ()), set(new or ())
        segments[name] = {"before": None if old is None else len(old), "after": None if new is None else len(new),
                          "entered": sorted(new_ids - old_ids), "left": sorted(old_ids - new_ids)}
    return {"segments": segments}


def diff_rules(old, new, data, backend: str | None = None, as_of=None,
               segments: list[str] | None = None) -> tuple[dict, list[str]]:
    """Two rule sets (`RuleSet`) on the same data as of one instant; the report and the data warnings."""
    if segments:
        names = list(dict.fromkeys(segments))
        on_old, on_new = _present(old, names), _present(new, names)
        for name in names:
            if name not in on_old and name not in on_new:
                new.program_for(segments=[name])  # the unknown-segment error, with its suggestions
    else:
        on_old, on_new = [n for n, _ in old.segments], [n for n, _ in new.segments]
    before = old.run(data, backend=backend, as_of=as_of, segments=on_old) if on_old else None
    after = new.run(data, backend=backend, as_of=as_of, segments=on_new) if on_new else None
    order = segments or [*on_old, *(n for n in on_new if n not in on_old)]
    old_members = before.members if before else {}
    new_members = after.members if after else {}
    report = compare({n: old_members.get(n) for n in order}, {n: new_members.get(n) for n in order})
    warnings = list(dict.fromkeys([*(before.warnings if before else ()), *(after.warnings if after else ())]))
    return report, warnings


def diff_dates(rules, data, first, second, backend: str | None = None,
               segments: list[str] | None = None) -> tuple[dict, list[str]]:
    """One rule set as of two instants; the report and the data warnings."""
    names = list(dict.fromkeys(segments)) if segments else None
    before = rules.run(data, backend=backend, as_of=first, segments=names)
    after = rules.run(data, backend=backend, as_of=second, segments=names)
    report = compare(dict(before.members), dict(after.members))
    return report, list(dict.fromkeys([*before.warnings, *after.warnings]))


def _present(rules, names: list[str]) -> list[str]:
    """Those of `names` the rule set (with the catalogue) has as segments."""
    present = []
    for name in names:
        try:
            rules.program_for(segments=[name])
        except UnknownNameError:
            continue
        present.append(name)
    return present


__all__ = ["compare", "diff_dates", "diff_rules"]
