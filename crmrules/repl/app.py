"""The REPL on a terminal (prompt_toolkit): highlighting, completion, history, multi-line entries and a
bottom toolbar with the live member count of what is being typed; and the same entries read from a pipe."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterable

from crmrules.repl.session import Session

DEBOUNCE = 0.15  # seconds of no typing before the live count runs
_OPENERS, _CLOSERS = "([{", ")]}"
_CONTINUES = re.compile(r"(:|\b(and|or|not|where|in)|[-+*/,=<>(|&])\s*$")


def complete_entry(text: str) -> bool:
    """Whether Enter submits `text`: brackets and strings closed, and it does not end mid-expression."""
    if text.lstrip().startswith(":"):
        return True
    depth, quote, escaped = 0, None, False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth -= 1
    last = text.rstrip().splitlines()[-1] if text.strip() else ""
    return quote is None and depth <= 0 and not _CONTINUES.search(last.split("#", 1)[0])


class LiveCount:
    """The member count of the text being typed, computed in a background thread after a pause in typing;
    a change of text makes a pending count obsolete and interrupts a running one."""

    def __init__(self, session: Session, refresh: Callable[[], None], delay: float = DEBOUNCE):
        self._session, self._refresh, self._delay = session, refresh, delay
        self._generation = 0
        self._timer: threading.Timer | None = None
        self._running = False
        self._flag = threading.Lock()
        self.status = ""

    def changed(self, text: str) -> None:
        """The text changed: forget the count, count again after the pause."""
        with self._flag:
            self._generation += 1
            generation = self._generation
            if self._running:
                self._session.interrupt()
        if self._timer is not None:
            self._timer.cancel()
        self.status = ""
        if not text.strip():
            return
        self._timer = threading.Timer(self._delay, self._count, (text, generation))
        self._timer.daemon = True
        self._timer.start()

    def _count(self, text: str, generation: int) -> None:
        if generation != self._generation:
            return
        self.status = "counting..."
        self._refresh()
        with self._session._lock:
            with self._flag:
                if generation != self._generation:
                    return
                self._running = True
            try:
                count = self._session.count(text)
            except BaseException:  # noqa: BLE001 - interrupted: a newer text is being counted
                count = None
            finally:
                with self._flag:
                    self._running = False
        if generation == self._generation:
            self.status = f"{count:,} members" if count is not None else ""
            self._refresh()

    def stop(self) -> None:
        self.changed("")


def lexer():
    """The Pygments lexer of the language for prompt_toolkit, when `crmrules.highlight` is there."""
    try:
        from crmrules.highlight import CrmRulesLexer
    except ImportError:
        return None
    from prompt_toolkit.lexers import PygmentsLexer

    return PygmentsLexer(CrmRulesLexer)


def history():
    """The history file in the user's private cache directory (in memory when there is none)."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    from crmrules.private_cache import cache_dir

    directory = cache_dir()
    return FileHistory(str(directory / "repl-history")) if directory is not None else InMemoryHistory()


def key_bindings():
    """Enter submits a complete entry and starts a new line otherwise; Esc Enter always starts a new line."""
    from prompt_toolkit.key_binding import KeyBindings

    bindings = KeyBindings()

    @bindings.add("enter")
    def _(event) -> None:
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            buffer.apply_completion(state.current_completion)  # a completion chosen in the menu
            return
        buffer.cancel_completion()
        if complete_entry(buffer.text):
            buffer.validate_and_handle()
        else:
            indent = "    " if buffer.text.rstrip().endswith(":") or "\n" in buffer.text else ""
            buffer.insert_text("\n" + indent)

    @bindings.add("escape", "enter")
    def _(event) -> None:
        event.current_buffer.insert_text("\n")

    return bindings


def prompt_session(session: Session, input=None, output=None, live: bool = True):
    """The prompt_toolkit PromptSession of the REPL (`input`/`output` for tests) and its live count."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.styles import Style

    from crmrules.repl.completion import SessionCompleter

    holder: dict = {}

    def refresh() -> None:
        app = holder.get("prompt")
        if app is not None and app.app.is_running:
            app.app.invalidate()

    counter = LiveCount(session, refresh) if live and session.data is not None else None

    def toolbar() -> str:
        as_of = session.ctx.as_of.isoformat()
        count = counter.status if counter is not None else ""
        return f" {count or ' '}   as of {as_of}   :help  Ctrl-D exits"

    prompt = PromptSession(
        "crm> ", multiline=True, prompt_continuation="...  ", lexer=lexer(), completer=SessionCompleter(session),
        complete_while_typing=True, history=history(), key_bindings=key_bindings(), bottom_toolbar=toolbar,
        style=Style.from_dict({"bottom-toolbar": "noreverse bg:#303030 #d0d0d0"}), input=input, output=output)
    holder["prompt"] = prompt
    if counter is not None:
        prompt.default_buffer.on_text_changed += lambda buffer: counter.changed(buffer.text)
    return prompt, counter


def run_terminal(session: Session) -> None:
    """The interactive loop: Ctrl-C clears the entry or cancels a running one, Ctrl-D exits."""
    from prompt_toolkit import print_formatted_text

    prompt, counter = prompt_session(session)
    threading.Thread(target=session.warm, daemon=True).start()
    while True:
        try:
            text = prompt.prompt()
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        if counter is not None:
            counter.stop()
        outcome = _run_cancellable(session, text)
        if outcome.text:
            print_formatted_text(outcome.text)
    session.close()


def _run_cancellable(session: Session, text: str):
    """Run one entry in a thread so that Ctrl-C interrupts its query and the session goes on."""
    from crmrules.repl.session import Outcome

    result: list = []
    worker = threading.Thread(target=lambda: result.append(session.run(text)), daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.05)
    except KeyboardInterrupt:
        session.interrupt()
        worker.join(5)
        return Outcome("cancelled", ok=False)
    return result[0] if result else Outcome("cancelled", ok=False)


def entries(lines: Iterable[str]) -> Iterable[str]:
    """Entries from lines: one a line; an indented line continues the entry before it (a declaration's body)."""
    entry: list[str] = []
    for line in lines:
        line = line.rstrip("\n")
        if entry and line[:1] in (" ", "\t") and line.strip():
            entry.append(line)
            continue
        if entry:
            yield "\n".join(entry)
        entry = [line] if line.strip() else []
    if entry:
        yield "\n".join(entry)


def run_piped(session: Session, lines: Iterable[str], out=None, err=None) -> int:
    """Entries read from a pipe, results printed as the REPL prints them (errors on stderr); the number of
    entries that failed."""
    out, err = out or sys.stdout, err or sys.stderr
    failed = 0
    for text in entries(lines):
        outcome = session.run(text)
        if not outcome.ok:
            failed += 1
        if outcome.text:
            print(outcome.text, file=out if outcome.ok else err, flush=True)
    session.close()
    return failed
