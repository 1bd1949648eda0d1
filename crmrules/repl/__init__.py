"""The REPL: `session` evaluates entries (no terminal), `completion` proposes names, `app` is the
prompt_toolkit interface with a live count, `piped` reads entries from a pipe."""
