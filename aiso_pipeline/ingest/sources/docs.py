"""The README's table of supported sources, generated from the declarations (a test keeps the README in step).

    python -m aiso_pipeline.ingest.sources.docs README.md   # rewrite the section between the markers
"""
from __future__ import annotations

from aiso_pipeline import readme
from aiso_pipeline.ingest.sources import Condition, Path_, Source, sources

BEGIN, END = "<!-- sources:begin (generated from aiso_pipeline/ingest/sources/; do not edit) -->", "<!-- sources:end -->"


def describe(c: Condition | None) -> str:
    if c is None:
        return "anything no other source recognizes"
    if c.path:
        key = f"`{'/'.join(c.path)}`"
        text = f"{key} in {', '.join(c.values)}" if c.values else f"has {key}"
        if c.absent:
            text += " (or no such key)"
        return text
    parts = [describe(x) for x in (c.any or c.all)]
    joined = (" or " if c.any else " and ").join(parts)
    return f"not ({joined})" if c.negate else joined


def _paths(paths: tuple[Path_, ...], limit: int = 3) -> str:
    shown = []
    for p in paths:
        if p.between:
            shown.append(f"`{'/'.join(p.between[1])}` − `{'/'.join(p.between[0])}`")
        elif p.sum_keys:
            shown.append(f"sum of `{'/'.join(p.sum_keys[0])}/*{p.sum_keys[1]}*`")
        elif p.sum:
            shown.append("sum of " + ", ".join(f"`{'/'.join(k)}`" for k in p.sum[:2]) + ", …")
        else:
            shown.append(f"`{p.text}`" + (" (s → ms)" if p.scale == 1000 else ""))
    more = f" (+{len(shown) - limit} more)" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def section() -> str:
    rows = ["| source | stream | recognized by | what is read | skipped and counted |", "|---|---|---|---|---|"]
    for s in sources():
        rows.append(f"| **{s.title}** (`{s.name}`) | {s.stream} | {describe(s.recognize)} | {s.reads or 'every key of the contract'} "
                    f"| {s.skips or 'nothing'} |")
    keys = ["request_id", "timestamp", "model", "input_tokens", "cost_usd", "user_id"]
    detail = ["", "Where each key is read from, first match wins (`a/b` is key `b` inside `a`; every alias is in "
              "the source's file under `aiso_pipeline/ingest/sources/`):", "",
              "| source | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for s in sources():
        if s.stream != "inference":
            continue
        detail.append(f"| `{s.name}` | " + " | ".join(_paths(s.fields.get(k, ())) or "—" for k in keys) + " |")
    examples = ["", "One line of each, as the tool writes it (each is a test: it loads as that source):", ""]
    for s in sources():
        examples += [f"- {s.title}:", "  ```json", f"  {s.example}", "  ```"]
    return "\n".join([BEGIN, *rows, *detail, *examples, END])


if __name__ == "__main__":
    readme.main("sources", BEGIN, END, section)
