"""LLM Lab Workbook helper package: notebooks call into these modules."""

__version__ = "0.1.0"


class LabError(Exception):
    """A user-facing error: the CLI prints its one-line message and exits non-zero."""
