"""isapi-wsgi 0.4's API (``import isapi_wsgi``) on isapi-freeze's WSGI adapter, so that
scripts written for isapi-wsgi freeze and run unchanged.

``ISAPISimpleHandler(rootapp=None, **apps)`` and ``ISAPIThreadPoolHandler(...)`` serve
`rootapp`, or the sub-application named by the first segment of PATH_INFO, with SCRIPT_NAME
and PATH_INFO worked out as isapi-wsgi did (``interpretPathInfo``). The request itself is
isapi.wsgi's: the body streamed from the server, the response streamed to it, native
strings as PEP 3333 wants them, ``wsgi.multithread`` True (IIS calls in from many
threads), and when the application fails, isapi.wsgi's 500 page with the request and the
traceback in the extension's log (isapi-wsgi sent wsgiref's plain-text page).
"""

import wsgiref.util

from isapi.wsgi import (
    ThreadedWSGIExtension,
    WSGIExtension,
    _latin1,
    _mount_point,
    _split_path,
    _variable,
)

# The isapi-wsgi release whose API this module follows.
__release__ = "0.4"

# isapi-wsgi's tracing switch: trace() prints only while it is true (print output goes to
# the extension's log, which `isapi-freeze trace DIST` follows, as win32traceutil's
# collector did).
traceon = 0


def trace(*msgs):
    """Prints each message while ``traceon`` is set."""
    if not traceon:
        return
    for msg in msgs:
        print(msg)


def getISAPIExtensionPath(ecb_server_vars):
    """The URL path of the IIS application the extension serves, from APPL_MD_PATH:
    ``/LM/W3SVC/1/ROOT/test`` gives ``/test``, the site root gives ``''``; ``/ROOT`` is
    found in any letter case, as IIS installations differ."""
    return _mount_point(ecb_server_vars["APPL_MD_PATH"])


def path_references_application(path, apps):
    """Whether the first non-empty segment of `path` is one of the names in `apps`."""
    segments = [segment for segment in path.split("/") if segment]
    return bool(segments) and segments[0] in apps


def interpretPathInfo(ecb_server_vars, app_names=()):
    """SCRIPT_NAME, PATH_INFO and IIS_EXTENSION_PATH (plus WSGI_SUBAPP when the path names
    a sub-application) from IIS's PATH_INFO, SCRIPT_NAME and APPL_MD_PATH (as PEP 3333
    native strings: one char per byte), as isapi-wsgi worked them out:

    - a wildcard script map (``*``) gives the whole path as both SCRIPT_NAME and PATH_INFO,
      so SCRIPT_NAME becomes where the IIS application is (IIS_EXTENSION_PATH);
    - SCRIPT_NAME is then taken off the front of PATH_INFO, when it is there (a ``.wsgi``
      map gives ``/v/any.wsgi`` and ``/v/any.wsgi/proc``; with IIS's
      AllowPathInfoForScriptMappings PATH_INFO is ``/proc`` already);
    - a first segment of PATH_INFO in `app_names` moves to SCRIPT_NAME (wsgiref's
      ``shift_path_info``) and is WSGI_SUBAPP.

    Unlike isapi-wsgi, the front of PATH_INFO matches in any ASCII letter case and only at
    a segment boundary, as IIS matches URLs, and SCRIPT_NAME keeps the case the client sent,
    so that SCRIPT_NAME + PATH_INFO is always the request's path.
    """
    path_info = ecb_server_vars["PATH_INFO"]
    script_name = ecb_server_vars["SCRIPT_NAME"]
    extension_path = getISAPIExtensionPath(ecb_server_vars)
    if script_name == path_info:
        script_name = extension_path
    if script_name:
        head, rest = _split_path(path_info, script_name)
        if head:
            script_name, path_info = head, rest
    result = {
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "IIS_EXTENSION_PATH": extension_path,
    }
    if path_references_application(path_info, app_names):
        result["WSGI_SUBAPP"] = wsgiref.util.shift_path_info(result)
    return result


def _iis_script_name(ecb):
    """IIS's SCRIPT_NAME as a PEP 3333 native string (the decoded path's UTF-8 bytes), the
    form the adapter gives PATH_INFO in, so that the two compare."""
    value = ecb.GetServerVariable("UNICODE_SCRIPT_NAME", None)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("latin-1")
    return _latin1(ecb.GetServerVariable("SCRIPT_NAME", b""))


def isapi_error(environ, start_response):
    """What a path gets when no application serves it: a handler made without `rootapp`,
    and a first segment that names none of its sub-applications."""
    # isapi-wsgi said "404 OK" and sent a str, which PEP 3333 forbids.
    body = b"Page not found"
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class _SubApplications:
    """What both handlers add to isapi.wsgi's extensions: `_route`, the WSGI application
    they give isapi.wsgi, sets the environ's paths as isapi-wsgi did and passes each
    request on to `rootapp` or the sub-application its path names."""

    def _route(self, environ, start_response):
        ecb = environ["isapi.ecb"]
        # The adapter split the request path by the mount point; isapi-wsgi's rules start
        # again from the whole path (IIS's PATH_INFO) and IIS's own SCRIPT_NAME.
        environ.update(
            interpretPathInfo(
                {
                    "PATH_INFO": environ["SCRIPT_NAME"] + environ["PATH_INFO"],
                    "SCRIPT_NAME": _iis_script_name(ecb),
                    "APPL_MD_PATH": _variable(ecb, "APPL_MD_PATH"),
                },
                self.apps,
            )
        )
        # isapi-wsgi copied IIS's HTTPS ("on"/"off"); Trac and Mercurial look at it.
        environ["HTTPS"] = "on" if environ["wsgi.url_scheme"] == "https" else "off"
        application = self.apps.get(environ.get("WSGI_SUBAPP"), self.rootapp)
        if application is None:
            application = isapi_error
        return application(environ, start_response)


# The class docstrings are what GetExtensionVersion gives IIS as the extension's
# description, isapi-wsgi's words.
class ISAPISimpleHandler(_SubApplications, WSGIExtension):
    """Python Simple WSGI ISAPI Extension"""

    # Requests run on the server's own threads, inside HttpExtensionProc (isapi.wsgi's
    # WSGIExtension): wsgi.multithread is True, where isapi-wsgi said False.
    def __init__(self, rootapp=None, **apps):
        self.rootapp = rootapp
        self.apps = apps
        WSGIExtension.__init__(self, self._route)


class ISAPIThreadPoolHandler(_SubApplications, ThreadedWSGIExtension):
    """Python Thread Pool WSGI ISAPI Extension"""

    # Requests run on the pool's worker threads (isapi.wsgi's ThreadedWSGIExtension), and
    # the server's threads are free at once.
    def __init__(self, rootapp=None, **apps):
        self.rootapp = rootapp
        self.apps = apps
        ThreadedWSGIExtension.__init__(self, self._route)


class IsapiWsgiHandler:
    """isapi-wsgi's per-request handler (a wsgiref BaseHandler there). Requests are served
    by isapi.wsgi here, so nothing uses this class; it remains for the scripts that
    subclass or replace it (Mercurial's hgwebdir_wsgi.py sets ``error_status``), and a
    failed request always gets isapi.wsgi's 500 page."""

    error_status = "500 Internal Server Error"
    error_headers = [("Content-Type", "text/plain")]
    error_body = b"A server error occurred.  Please contact the administrator."


def test(environ, start_response):
    """isapi-wsgi's own test application."""
    body = b"Hello world from isapi!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def __ExtensionFactory__():
    """isapi-wsgi served its test application when frozen as the script itself."""
    return ISAPISimpleHandler(test)
