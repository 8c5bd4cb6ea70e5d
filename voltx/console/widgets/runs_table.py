"""The runs table: a row-cursor DataTable whose Home/End go to the first/last run.

Textual's DataTable binds home/end to horizontal scrolling (column start/end), which does
nothing useful with a row cursor; ctrl+home/ctrl+end, which move the cursor, are not what
a user tries first.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable


class RunsTable(DataTable):
    BINDINGS = [
        Binding("home", "scroll_top", "First run", show=False),
        Binding("end", "scroll_bottom", "Last run", show=False),
    ]
