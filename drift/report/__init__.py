"""Run summaries (JSON) and human reports (Markdown)."""
