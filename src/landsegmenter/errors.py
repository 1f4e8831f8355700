"""User-facing errors: one clear line, no traceback, non-zero exit."""


class LandSegError(Exception):
    """An error caused by the user's input (files, options, class names).

    The CLI prints ``landseg: error: <message>`` and exits with status 2; the
    message must be one line that says what is wrong and, where possible, how
    to fix it.
    """


def describe_os_error(exc: OSError) -> str:
    """One line for a failed file operation: the reason and the path, e.g. ``No space left on device: /out/x.tif``."""
    text = str(exc).strip()
    reason = exc.strerror or (text.splitlines()[0] if text else type(exc).__name__)
    return f"{reason}: {exc.filename}" if exc.filename else reason
