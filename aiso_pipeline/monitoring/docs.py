"""The README's table of scorecard checks, rendered from monitoring/scorecard.yaml.

    .venv/bin/python -m aiso_pipeline.monitoring.docs README.md   # rewrite it
"""
from __future__ import annotations

from aiso_pipeline import readme
from aiso_pipeline.monitoring.scorecard import checks

BEGIN, END = ("<!-- scorecard:begin (generated from aiso_pipeline/monitoring/scorecard.yaml; do not edit) -->",
              "<!-- scorecard:end -->")


def section() -> str:
    rows = ["| check | passes at | fails beyond | weight | figure |", "|---|---|---|---|---|"]
    for c in checks():
        rows.append(f"| `{c.name}` | {c.target()} | {c.limit()} | {c.weight:g} | {c.source} |")
    return "\n".join([BEGIN, *rows, END])


if __name__ == "__main__":
    readme.main("scorecard", BEGIN, END, section)
