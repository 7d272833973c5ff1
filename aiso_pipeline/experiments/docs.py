"""The README's table of experiment metrics, rendered from experiments/metrics.yaml.

    .venv/bin/python -m aiso_pipeline.experiments.docs README.md   # rewrite it
"""
from __future__ import annotations

from aiso_pipeline import readme
from aiso_pipeline.experiments.metrics import catalog

BEGIN, END = ("<!-- metrics:begin (generated from aiso_pipeline/experiments/metrics.yaml; do not edit) -->",
              "<!-- metrics:end -->")


def section() -> str:
    c = catalog()
    rows = ["| metric | kind | from (per user) | better | default role | cap | CUPED | what it is |",
            "|---|---|---|---|---|---|---|---|"]
    for d in c.metrics.values():
        parts = " / ".join(f"`{m}`" for m in d.measures)
        rows.append(f"| `{d.name}` | {d.kind} | {parts} | {d.better} | {d.role} | {'yes' if d.cap else ''} | "
                    f"{'yes' if d.cuped else ''} | {d.description} |")
    rows += ["", "Per-user measures (summed over the user's rows of `marts.joined_outcomes` after exposure, and over "
             "the 14 days before it for CUPED):", "", "| measure | per row | per user |", "|---|---|---|"]
    for m in c.measures.values():
        rows.append(f"| `{m.name}` | `{m.sql}` | {m.agg} |")
    return "\n".join([BEGIN, *rows, END])


if __name__ == "__main__":
    readme.main("metrics", BEGIN, END, section)
