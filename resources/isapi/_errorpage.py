"""The 500 page of a failed request, shared by the runtime, ThreadPoolExtension and the
WSGI adapter: a fixed page, or the traceback when the server opts in. A module of its own
so that isapi.wsgi can also run inside pywin32's isapi package (the benchmarks do).
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


def page():
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
