"""Small helpers for error messages: JSON paths and 'did you mean' hints."""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def suggest(word, choices: Iterable[str]) -> str:
    """'; did you mean X?' for the closest valid name, or ''."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def join_path(base: str, *parts) -> str:
    """Append keys / indices: join_path('pipes[2]', 'match', 1) -> 'pipes[2].match[1]'."""
    path = base
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENT.match(part) or "." in part:
            path = f"{path}.{part}" if path else part
        else:
            path += f"[{part!r}]"
    return path
