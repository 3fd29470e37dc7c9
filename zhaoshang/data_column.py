"""The progress bar's text column for data (imported with rich.progress, by the commands that show a bar)."""

from __future__ import annotations

from rich.progress import Task, TextColumn
from rich.text import Text

from events.escape import terminal


class DataColumn(TextColumn):
    """A progress text column whose text (a file name, a status) is data: no markup, controls visible."""

    def __init__(self, text_format: str, style: str = "none") -> None:
        super().__init__(text_format, style=style, markup=False)

    def render(self, task: Task) -> Text:
        # Formatted here, not by TextColumn: rich's Text drops a carriage return before it could be shown.
        return Text(terminal(self.text_format.format(task=task)), style=self.style, justify=self.justify)
