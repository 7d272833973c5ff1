"""Asset metadata the UI shows for a table partition: column schema, row count, a preview."""
from __future__ import annotations

import dagster as dg
import duckdb

from aiso_pipeline.text import md_text


class RawMarkdown(str):
    """A cell markdown_table passes through as is (a link we built), neither escaped nor shortened."""


def markdown_table(columns: list[str], rows: list[tuple]) -> str:
    def cell(v) -> str:
        if isinstance(v, RawMarkdown):
            return v
        text = "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
        # cells hold data (models, ids, failing values): shortened first, then escaped, so a `|`, a CR or
        # `<script>` can neither break the table nor reach the UI as markup (replacing `|` and LF alone missed
        # CR, HTML, and `\|` in the data, which became `\\|`: an escaped backslash and a real cell border)
        return md_text(text[:60] + "…" if len(text) > 60 else text)

    lines = ["| " + " | ".join(md_text(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def table_metadata(con: duckdb.DuckDBPyConnection, table: str, dt: str | None = None, preview_rows: int = 5) -> dict:
    """Schema, partition row count and preview of `table` (schema.name from a fixed set of our tables)."""
    schema, name = table.split(".")
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position", [schema, name]).fetchall()
    where, params = ("WHERE dt = ?", [dt]) if dt else ("", [])
    count = con.execute(f"SELECT count(*) FROM {table} {where}", params).fetchone()[0]
    rel = con.execute(f"SELECT * FROM {table} {where} LIMIT {int(preview_rows)}", params)
    preview = markdown_table([d[0] for d in rel.description], rel.fetchall())
    return {
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(c, t) for c, t in columns]),
        "dagster/row_count": dg.MetadataValue.int(int(count)),
        "dagster/table_name": table,
        "preview": dg.MetadataValue.md(preview),
    }
