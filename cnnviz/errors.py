"""The one base class for problems a user can fix: the CLI and the app show its message, never a traceback."""


class CnnvizError(Exception):
    """A clear, user-facing sentence about what went wrong and how to fix it."""
