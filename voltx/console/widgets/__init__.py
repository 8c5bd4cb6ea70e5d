"""Widgets of the console: plots, the deliverables scoreboard, the RAR panel."""
