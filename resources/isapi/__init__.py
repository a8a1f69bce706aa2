"""isapi-freeze's own stand-in for pywin32's ``isapi`` package.

Frozen ISAPI scripts import ``isapi`` exactly as they would under pywin32; this
package supplies the same exception names without any pywin32 dependency.
"""

__all__ = [
    "ISAPIError",
    "ExtensionError",
    "FilterError",
    "InternalReloadException",
]


def _describe_windows_error(code):
    """Best-effort system message text for a Win32 error number."""
    try:
        import ctypes

        text = ctypes.FormatError(code)  # only present on Windows builds
    except (ImportError, AttributeError, TypeError, ValueError, OSError):
        return "no error message is available"
    text = (text or "").strip()
    return text or "no error message is available"


class ISAPIError(Exception):
    """Base for errors reported by the ISAPI host (the loader DLL).

    ``errno`` is the Win32 error number (``GetLastError()`` at the time of the
    failing call), ``strerror`` its text (None until first needed) and
    ``funcname`` names the ISAPI call that failed, e.g. "GetServerVariable".
    """

    def __init__(self, errno, strerror=None, funcname=None):
        super().__init__(errno, strerror, funcname)
        self.errno = errno
        self.strerror = strerror
        self.funcname = funcname

    def __str__(self):
        if self.strerror is None:
            self.strerror = _describe_windows_error(self.errno)
        return str((self.errno, self.strerror, self.funcname))


class FilterError(ISAPIError):
    """Raised when a call on an HTTP filter context object fails."""


class ExtensionError(ISAPIError):
    """Raised when a call on an EXTENSION_CONTROL_BLOCK object fails."""


class InternalReloadException(Exception):
    """Raise from any extension/filter callback to ask the host to reload.

    The host then calls the terminate callback with 0, re-imports the script
    module, calls the factory again, calls GetExtensionVersion /
    GetFilterVersion with None, and finally repeats the interrupted call.
    """


# The 500 page every failed request gets. The traceback stays in the log unless the server
# sets ISAPI_FREEZE_ERROR_DETAIL=1 in the worker's environment (for development: an IIS
# application pool's environmentVariables, or the environment of `isapi-freeze serve`).
ERROR_PAGE = (
    b"<html><head><title>500 Internal Server Error</title></head><body>"
    b"<h1>Internal Server Error</h1><p>The application failed to handle this request. "
    b"The details are in the application's log.</p></body></html>"
)
ERROR_DETAIL_VARIABLE = "ISAPI_FREEZE_ERROR_DETAIL"


def _error_page():
    """The 500 page for the exception being handled: ERROR_PAGE, or with the traceback
    (HTML-escaped) when the opt-in variable is 1."""
    import os

    if os.environ.get(ERROR_DETAIL_VARIABLE) != "1":
        return ERROR_PAGE
    import html
    import traceback

    detail = html.escape(traceback.format_exc()).encode("utf-8", "replace")
    return (
        b"<html><head><title>500 Internal Server Error</title></head><body>"
        b"<h1>Internal Server Error</h1><pre>" + detail + b"</pre></body></html>"
    )
