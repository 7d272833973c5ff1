"""Hostile-text helpers for everything that turns data values into file names or markdown.

Ids, models, features and variants come straight from landing files: they may hold `|`, newlines, HTML, `..`,
`/` or 10k characters. These helpers keep them from breaking a table, injecting markup or escaping a folder.
"""
from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\x0b\x0c\x85\u2028\u2029]")


def safe_slug(name: str, max_len: int = 80) -> str:
    """A stable file name (no extension) for `name`: `name` itself when it is already a short, plain file name,
    else its plain characters (at most `max_len`) plus a hash of the whole name, so distinct names never share a
    file ('a/b' and 'a b' would both sanitize to 'a_b') and no name is too long for the file system (255 bytes).
    Never empty, never starts with '.' or '_' (no hidden files, no clash with `_index.md`), never contains '/'."""
    plain = _UNSAFE.sub("_", name).strip("._-")
    if plain == name and 0 < len(name) <= max_len:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{plain[:max_len].rstrip('._-') or 'x'}-{digest}"


def md_text(value) -> str:
    """`value` as inline markdown text that renders as itself: HTML is escaped (CommonMark decodes the entities
    back for display, so `<script>` shows as text and never runs), `|` cannot end a table cell, a line break cannot
    end a table row or start a heading, and `[`/`]`/backticks cannot open a link or a code span."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("[", "\\[").replace("]", "\\]")
    return _LINE_BREAKS.sub(" ", text)


def plain_label(value, max_len: int = 40) -> str:
    """`value` for a fixed-width text picture inside a code block (the forest plot): one line, no backticks (a
    ``` would close the block), no angle brackets (raw `<tag>` text never reaches a report), at most `max_len`
    characters."""
    text = _LINE_BREAKS.sub(" ", "" if value is None else str(value))
    text = text.replace("`", "'").replace("<", "‹").replace(">", "›")
    text = "".join(ch if ch.isprintable() else "�" for ch in text)
    return text if len(text) <= max_len else text[:max_len - 1] + "…"
