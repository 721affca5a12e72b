"""Static, self-contained HTML dashboard over the leaderboard Parquet store (Altair / Vega-Lite, DuckDB)."""

from eval.dashboard.build import build_dashboard, fmt, render_html

__all__ = ["build_dashboard", "fmt", "render_html"]
