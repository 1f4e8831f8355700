"""User-facing errors: one clear line, no traceback, non-zero exit."""


class LandSegError(Exception):
    """An error caused by the user's input (files, options, class names).

    The CLI prints ``landseg: error: <message>`` and exits with status 2; the
    message must be one line that says what is wrong and, where possible, how
    to fix it.
    """
