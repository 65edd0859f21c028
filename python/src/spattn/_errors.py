"""The exception every failing library call raises."""

# The status codes of spattn_status, by value (include/spattn.h).
STATUS_NAMES = (
    "SPATTN_OK",
    "SPATTN_E_NULL",
    "SPATTN_E_SHAPE",
    "SPATTN_E_MASK",
    "SPATTN_E_ARG",
    "SPATTN_E_UNSUPPORTED",
    "SPATTN_E_NOMEM",
)


class Error(RuntimeError):
    """A library call returned a status other than SPATTN_OK.

    Attributes: ``status`` (the integer code), ``status_name`` ("SPATTN_E_SHAPE", ...),
    ``message`` (what spattn_status_string says) and ``function`` (the C function called).
    """

    def __init__(self, status, message, function):
        self.status = int(status)
        self.status_name = (
            STATUS_NAMES[self.status] if 0 <= self.status < len(STATUS_NAMES) else "unknown"
        )
        self.message = message
        self.function = function
        super().__init__(f"{function}: {message} ({self.status_name})")
