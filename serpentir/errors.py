"""The one exception type that the command line turns into a one-line message instead of a traceback."""


class UserError(Exception):
    """Something the user can fix: a missing file, a bad image, an unknown name, a bad option."""
