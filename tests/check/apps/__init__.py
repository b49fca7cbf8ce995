"""Small apps `stepline check` is tested on: one that passes every check, one that fails each
of them, and a few that fail in one particular way."""
