"""Generated README sections: the text between a begin and an end marker comes from a declaration
(`ingest/sources/docs.py`, `experiments/docs.py`); tests keep the README in step."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable


def rewrite(readme: Path, begin: str, end: str, section: str) -> bool:
    """Replace the README's text from `begin` to `end` (markers included) with `section`; True when it changed."""
    text = readme.read_text()
    start, stop = text.index(begin), text.index(end) + len(end)
    new = text[:start] + section + text[stop:]
    if new != text:
        readme.write_text(new)
    return new != text


def main(name: str, begin: str, end: str, section: Callable[[], str]) -> None:
    """`python -m <module> [README.md]`: rewrite the section and say whether it changed."""
    changed = rewrite(Path(sys.argv[1] if len(sys.argv) > 1 else "README.md"), begin, end, section())
    print(f"README.md: {name} section " + ("rewritten" if changed else "already up to date"))
