"""The catalogue as data (name, group, kind, type, definition) and as the Markdown of docs/reference.md."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from crmrules import ast
from crmrules.formatter import format_expr
from crmrules.schema import default_schema
from crmrules.stdlib import GROUPS, PROFILE_COLUMNS, entries, prelude


@dataclass(frozen=True)
class Item:
    """One catalogue entry as listed by `crmrules attributes` and `crmrules templates`."""

    name: str
    kind: str  # "attribute", "column", "setting", "function" or "template"
    group: str
    type: str
    title: str
    definition: str


@cache
def items() -> tuple[Item, ...]:
    """Every catalogue entry: profile columns, attributes, settings, functions and templates."""
    from crmrules.compiler.pipeline import check

    schema = default_schema()
    names = tuple(entry.decl.name for entry in entries())
    program = check(ast.RuleFile(declarations=()), schema, prelude=prelude(), roots=names)
    found = [Item(name, "column", "profile", str(schema.column("customers", name).type), _COLUMN_TITLES[name],
                  f"customers.{name}") for name in PROFILE_COLUMNS]
    for entry in entries():
        decl = entry.decl
        match decl:
            case ast.FunctionDecl(params=params):
                listed = ", ".join(p.name if p.default is None else f"{p.name}: {format_expr(p.default)}"
                                   for p in params)
                found.append(Item(f"{decl.name}({listed})", "function", entry.group, "", decl.title or "",
                                  format_expr(decl.body)))
            case ast.SegmentDecl():
                found.append(Item(decl.name, "template", entry.group, "bool", decl.title or "",
                                  format_expr(decl.body)))
            case ast.AttributeDecl():
                kind = "setting" if entry.is_setting else "attribute"
                title = (decl.title or "").removeprefix("Settings: ")
                found.append(Item(decl.name, kind, entry.group, str(program.attributes[decl.name].body.type), title,
                                  format_expr(decl.body)))
    return tuple(found)


def markdown() -> str:
    """docs/reference.md: every entry with its exact definition, by group."""
    lines = ["# Catalogue reference", "",
             "Generated from `crmrules/stdlib/*.crm` by `crmrules attributes --format markdown`; "
             "a test keeps it current. Purchase attributes count paid orders (status \"paid\"). "
             "`x within 30d` means `now - 30d < x <= now`; `ever` is no window at all. "
             "A rule file may redefine any name below; the catalogue then uses the new definition "
             "everywhere (that is how the settings are changed).", ""]
    everything = items()
    counted = sum(1 for item in everything if item.kind in ("attribute", "column"))
    lines += [f"{counted} attributes, {sum(1 for i in everything if i.kind == 'function')} functions, "
              f"{sum(1 for i in everything if i.kind == 'template')} templates, "
              f"{sum(1 for i in everything if i.kind == 'setting')} settings.", ""]
    for group in (*GROUPS, "templates"):
        lines += [f"## {group.capitalize()}", ""]
        for item in everything:
            if item.group != group:
                continue
            kind = "" if item.kind in ("attribute", "template") else f" *({item.kind})*"
            typed = f" : {item.type}" if item.type else ""
            lines.append(f"### `{item.name}`{typed}{kind}")
            lines.append("")
            if item.title:
                lines += [item.title, ""]
            lines += ["```", item.definition, "```", ""]
    return "\n".join(lines)


_COLUMN_TITLES = {
    "gender": "Gender as recorded", "country": "Country code", "city": "City", "language": "Preferred language",
    "source": "Acquisition channel", "email_subscribed": "Consents to email", "sms_subscribed": "Consents to SMS",
    "tags": "Tags (list of strings)", "tier": "Member tier", "points": "Loyalty points", "birthday": "Date of birth",
    "registered_at": "When the customer registered",
}
