"""Email bodies: Jinja2 templates `DIR/NAME.txt` (first line `Subject: ...`) and optional `DIR/NAME.html`.

A webhook or JSON-lines channel with `templates` renders the same way (the Subject line optional there)
and sends the result along: `subject`, `text`, `html` in its payload.

A template sees `customer` (the customer's columns) and the action's arguments by name
(`{{ coupon }}`, `{{ first_name }}`); an undefined name is an error (StrictUndefined), and the HTML
part escapes what it inserts. Every template the due messages name is compiled before anything is
sent, so a syntax error stops the delivery with the file and line; a template that does not exist,
or fails while rendering one message, fails that message only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crmrules.campaigns.delivery.errors import TEMPLATE, DeliveryError, line_span

_SUBJECT = "subject:"


@dataclass(frozen=True)
class RenderedEmail:
    """What a template made of one message."""

    subject: str | None
    text: str
    html: str | None


class MessageFailure(Exception):
    """One message cannot be sent (a missing template, a rendering error): it fails, the rest go on."""


class EmailTemplates:
    """The templates of one directory, compiled once; `render(name, customer, args)` per message."""

    def __init__(self, folder: Path, subject_required: bool = True):
        import jinja2

        self.folder = folder
        self.subject_required = subject_required  # email: yes; a text for a webhook or a file may have none
        self._jinja = jinja2
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(folder)), undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm"), default_for_string=False),
            keep_trailing_newline=True)
        self._compiled: dict[str, tuple[object, object | None] | str] = {}

    def prepare(self, names) -> None:
        """Compile the named templates; DeliveryError naming file and line for one that does not compile.
        A name without a `.txt` file is remembered: its messages fail with that reason."""
        for name in sorted(set(names)):
            if name in self._compiled:
                continue
            text_path = self.folder / f"{name}.txt"
            if not _safe(name) or not text_path.is_file():
                self._compiled[name] = f"no template {text_path}"
                continue
            text = self._load(f"{name}.txt")
            first = text.template_source.split("\n", 1)[0]
            if self.subject_required and not first.strip().lower().startswith(_SUBJECT):
                source = (self.folder / f"{name}.txt").read_text(encoding="utf-8", errors="replace")
                raise DeliveryError(f"the template {text_path} does not start with a `Subject: ...` line",
                                    line_span(str(text_path), source, 1), "write the subject on the first line: "
                                    "Subject: We miss you, {{ customer.first_name }}", code=TEMPLATE)
            html = self._load(f"{name}.html") if (self.folder / f"{name}.html").is_file() else None
            self._compiled[name] = (text, html)

    def _load(self, filename: str):
        """The compiled template (by its file name, so `.html` ones autoescape); its source kept for checks."""
        path = self.folder / filename
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise DeliveryError(f"cannot read the template {path}: {error}", code=TEMPLATE) from None
        try:
            template = self.environment.get_template(filename)
        except self._jinja.TemplateSyntaxError as error:
            raise DeliveryError(f"template syntax error: {error.message}",
                                line_span(str(path), source, error.lineno or 1), code=TEMPLATE) from None
        template.template_source = source
        return template

    def render(self, name, customer: dict | None, args: dict) -> RenderedEmail:
        """The subject, text and HTML of one message; MessageFailure with the reason when it cannot be made."""
        compiled = self._compiled.get(name) if isinstance(name, str) else None
        if compiled is None:
            raise MessageFailure(f"no template named {name!r}" if not isinstance(name, str)
                                 else f"template {name!r} was not prepared")
        if isinstance(compiled, str):
            raise MessageFailure(compiled)
        text_template, html_template = compiled
        values = {key: value for key, value in args.items() if key.isidentifier()}
        values["customer"] = customer if customer is not None else {}
        try:
            text = text_template.render(values)
            html = html_template.render(values) if html_template is not None else None
        except Exception as error:  # noqa: BLE001 - any rendering error fails this message only, with its reason
            raise MessageFailure(f"template {name!r} failed: {type(error).__name__}: {error}") from None
        first, _, body = text.partition("\n")
        if not first.strip().lower().startswith(_SUBJECT):
            return RenderedEmail(subject=None, text=text, html=html)
        subject = first.strip()[len(_SUBJECT):].strip()
        return RenderedEmail(subject=" ".join(subject.split()), text=body.lstrip("\n"), html=html)


def _safe(name: str) -> bool:
    """A template name is a file name in the directory, never a path out of it."""
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")
