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


# The 500 page every failed request gets (isapi._errorpage; kept here under the names
# scripts and the runtime use).
from isapi._errorpage import ERROR_DETAIL_VARIABLE, ERROR_PAGE  # noqa: E402
from isapi._errorpage import page as _error_page  # noqa: E402
