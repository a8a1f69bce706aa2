"""Serve a PEP 3333 (WSGI) application as an ISAPI extension.

A script needs only::

    from isapi.wsgi import factory
    __ExtensionFactory__ = factory(app)

Requests run on the server's own thread, inside HttpExtensionProc: IIS calls it from its
thread pool, many requests at once (so ``wsgi.multithread`` is True), and only one thread
runs Python at a time whatever the pool, so handing each request to a pool of Python
threads would add a thread wake-up per request and no parallelism. An application whose
requests wait a long time on something other than Python (slow back ends, long polling)
can ask for ``factory(app, threaded=True)``: requests then run on a ThreadPoolExtension's
workers and the server's threads are free at once. The request body is read from
the server as the application reads ``wsgi.input``; the response goes out as the
application produces it (the server chunks it when there is no Content-Length).

The mount point comes from APPL_MD_PATH: IIS serves a wildcard script map with the whole
URL path as PATH_INFO, so for an application at ``/app`` (APPL_MD_PATH
``/LM/W3SVC/1/ROOT/app``) and ``/app/x/y``, SCRIPT_NAME is ``/app`` and PATH_INFO ``/x/y``.
"""

import sys
import traceback

from isapi import ExtensionError, isapicon
from isapi._errorpage import ERROR_PAGE
from isapi._errorpage import page as _error_page
from isapi.simple import SimpleExtension
from isapi.threaded_extension import ThreadPoolExtension

__all__ = ["factory", "WSGIExtension", "ThreadedWSGIExtension", "InputStream", "FileWrapper"]

# TotalBytes of a body whose length is not known up front (chunked): cbTotalBytes's
# 0xFFFFFFFF, which the ECB gives as pywin32 does, a C int.
UNKNOWN_LENGTH = -1
# How much wsgi.input asks the server for at a time.
READ_CHUNK = 64 * 1024


# Headers that become CGI variables without the HTTP_ prefix.
_UNPREFIXED = {"CONTENT_TYPE", "CONTENT_LENGTH"}


def factory(app, threaded=False):
    """An ``__ExtensionFactory__`` serving the WSGI application `app`."""
    extension_class = ThreadedWSGIExtension if threaded else WSGIExtension

    def __ExtensionFactory__():
        return extension_class(app)

    return __ExtensionFactory__


class ClientDisconnected(OSError):
    """The client went away while the request body was being read."""


class InputStream:
    """``wsgi.input``: the request body, read from the server as it is asked for.

    First the bytes the server read ahead (``ecb.AvailableData``), then ``ReadClient`` in
    chunks of at most READ_CHUNK; only what a read call asked for (or one chunk, for
    readline) is ever held. It never reads beyond the body's length.
    """

    def __init__(self, ecb):
        self._ecb = ecb
        # Set up on the first read: most requests never read a body.
        self._buffer = None

    def _start(self):
        ecb = self._ecb
        total = ecb.TotalBytes
        self._remaining = None if total == UNKNOWN_LENGTH else total
        self._buffer = bytearray(ecb.AvailableData)
        if self._remaining is not None:
            del self._buffer[self._remaining:]
            self._remaining -= len(self._buffer)
        self._eof = self._remaining == 0

    def _fill(self, wanted=READ_CHUNK):
        """Reads the next piece from the server into the buffer; False at the end."""
        if self._eof:
            return False
        n = min(wanted, READ_CHUNK)
        if self._remaining is not None:
            n = min(n, self._remaining)
        try:
            data = self._ecb.ReadClient(n)
        except ExtensionError as error:
            self._eof = True
            raise ClientDisconnected(f"reading the request body failed: {error}") from error
        if self._remaining is not None:
            self._remaining -= len(data)
            if len(data) < n:
                self._eof = True
                raise ClientDisconnected(
                    f"the client sent {self._remaining} bytes fewer than Content-Length announced"
                )
            self._eof = self._remaining == 0
        elif len(data) < n:
            self._eof = True
        self._buffer += data
        return bool(data)

    def _take(self, n):
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def read(self, size=-1):
        if self._buffer is None:
            self._start()
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._fill(size - len(self._buffer)):
            pass
        return self._take(size)

    def readline(self, size=-1):
        if self._buffer is None:
            self._start()
        if size is None:
            size = -1
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end >= 0:
                n = end + 1
                break
            if 0 <= size <= len(self._buffer):
                n = size
                break
            start = len(self._buffer)
            if not self._fill():
                n = len(self._buffer)
                break
        if 0 <= size < n:
            n = size
        return self._take(n)

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class ErrorStream:
    """``wsgi.errors``: text for the application's log (whatever sys.stderr is then)."""

    def write(self, text):
        return sys.stderr.write(text)

    def writelines(self, lines):
        for line in lines:
            sys.stderr.write(line)

    def flush(self):
        flush = getattr(sys.stderr, "flush", None)
        if flush is not None:
            flush()


_ERRORS = ErrorStream()


class FileWrapper:
    """``wsgi.file_wrapper``: iterates a file-like object in blocks, and closes it."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


def _mount_point(appl_md_path):
    """The application's URL path from APPL_MD_PATH (``/LM/W3SVC/1/ROOT/app`` -> ``/app``;
    the site root gives "")."""
    at = appl_md_path.encode("latin-1").upper().find(b"/ROOT")
    if at < 0:
        return ""
    return appl_md_path[at + len("/ROOT"):].rstrip("/")


def _split_path(path, mount):
    """(SCRIPT_NAME, PATH_INFO) for a request path under the mount point; URL paths match
    ASCII-case-insensitively, as in IIS."""
    if mount:
        head = path[: len(mount)]
        if head.encode("latin-1").lower() == mount.encode("latin-1").lower():
            rest = path[len(mount):]
            if not rest or rest.startswith("/"):
                return head, rest
    return "", path


def _latin1(value):
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _variable(ecb, name, default=""):
    value = ecb.GetServerVariable(name, None)
    if value is None:
        return default
    return _latin1(value)


def _request_headers(ecb):
    """(CGI_NAME, value) for each request header line: from ALL_RAW, the headers as sent,
    else from ALL_HTTP. Names with `_` or non-ASCII characters are dropped, as CGI servers
    do, so that a client cannot pass one off as another (X_User vs X-User)."""
    raw = _variable(ecb, "ALL_RAW")
    if raw:
        for line in raw.split("\n"):
            name, sep, value = line.rstrip("\r").partition(":")
            name = name.strip(" \t")
            if not sep or not name or "_" in name or not name.isascii():
                continue
            yield name.upper().replace("-", "_"), value.strip(" \t")
        return
    for line in _variable(ecb, "ALL_HTTP").split("\n"):
        name, sep, value = line.rstrip("\r").partition(":")
        if sep and name.startswith("HTTP_"):
            yield name[len("HTTP_"):], value.strip(" \t")


def _cgi_environ(ecb):
    """The environ's CGI variables (every str-valued key, plus ``wsgi.url_scheme``).

    isapi-freeze's runtime does the same natively (``_isapi_freeze.wsgi_cgi_environ``, in
    stub/runtime/src/wsgi.rs); this is what runs under pywin32's loader.
    """
    # PEP 3333's "bytes as latin-1" native strings: the decoded path's UTF-8 bytes.
    path = ecb.GetServerVariable("UNICODE_PATH_INFO", None)
    if isinstance(path, str):
        path = path.encode("utf-8", "surrogateescape").decode("latin-1")
    else:
        path = _latin1(ecb.PathInfo)
    script_name, path_info = _split_path(path, _mount_point(_variable(ecb, "APPL_MD_PATH")))
    https = _variable(ecb, "HTTPS", "off").lower() == "on"
    environ = {
        "REQUEST_METHOD": _latin1(ecb.Method),
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": _latin1(ecb.QueryString),
        "SERVER_NAME": _variable(ecb, "SERVER_NAME"),
        "SERVER_PORT": _variable(ecb, "SERVER_PORT", "443" if https else "80"),
        "SERVER_PROTOCOL": _variable(ecb, "SERVER_PROTOCOL", "HTTP/1.1"),
        "SERVER_SOFTWARE": _variable(ecb, "SERVER_SOFTWARE"),
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REMOTE_ADDR": _variable(ecb, "REMOTE_ADDR"),
        "wsgi.url_scheme": "https" if https else "http",
    }
    for name in ("REMOTE_PORT", "REMOTE_USER", "AUTH_TYPE"):
        value = _variable(ecb, name)
        if value:
            environ[name] = value
    content_type = _latin1(ecb.ContentType)
    if content_type:
        environ["CONTENT_TYPE"] = content_type
    content_length = _variable(ecb, "CONTENT_LENGTH")
    if content_length and ecb.TotalBytes != UNKNOWN_LENGTH:
        environ["CONTENT_LENGTH"] = content_length
    for name, value in _request_headers(ecb):
        if name in _UNPREFIXED:
            continue
        key = "HTTP_" + name
        environ[key] = environ[key] + "," + value if key in environ else value
    return environ


try:
    from _isapi_freeze import wsgi_cgi_environ as _native_cgi_environ
except ImportError:  # pywin32's loader
    _native_cgi_environ = None

cgi_environ = _native_cgi_environ or _cgi_environ

# The environ keys that are the same for every request.
_WSGI_KEYS = {
    "wsgi.version": (1, 0),
    "wsgi.errors": _ERRORS,
    "wsgi.multithread": True,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
    "wsgi.file_wrapper": FileWrapper,
}


class _Response:
    """``start_response`` and the response it starts: the status and header lines the
    application gave, sent with its first non-empty block of body (or at the end). The
    runtime's ``_isapi_freeze.WsgiResponse`` is the same, natively; this one runs under
    pywin32's loader (tests/e2e/wsgi.rs checks that the two answer alike)."""

    def __init__(self, ecb):
        self.ecb = ecb
        self.status = None
        # The header lines as they will be sent, without the blank line that ends them.
        self.header_block = ""
        self.headers_sent = False

    def __call__(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response was already called (without exc_info)")
        if not isinstance(status, str):
            raise TypeError(f"the status must be a str, not {type(status).__name__}")
        if len(status) < 4 or not status[:3].isdigit() or status[3] != " ":
            raise ValueError(f"the status {status!r} is not 'NNN Reason'")
        # A list first: `headers` may be an iterator, and the checks go over it twice.
        headers = list(headers)
        lines = []
        for header in headers:
            if not (isinstance(header, tuple) and len(header) == 2
                    and isinstance(header[0], str) and isinstance(header[1], str)):
                raise TypeError(f"each header must be a (str, str) tuple, not {header!r}")
            lines.append(f"{header[0]}: {header[1]}\r\n")
        block = "".join(lines)
        # Each line ends with the only CR and LF it may have.
        if block.count("\r") != len(lines) or block.count("\n") != len(lines):
            for header in headers:
                if any(c in header[0] + header[1] for c in "\r\n"):
                    raise ValueError(f"a header contains a line break: {header!r}")
        self.status = status
        self.header_block = block
        return self.write

    def has_length(self):
        """Whether the application set Content-Length (names match case-insensitively)."""
        return "\ncontent-length:" in ("\n" + self.header_block).lower()

    def add_length(self, length):
        self.header_block += f"Content-Length: {length}\r\n"

    def send_headers(self):
        if self.status is None:
            raise AssertionError("the application returned without calling start_response")
        # Encoded first: a status or header outside latin-1 fails before anything is sent,
        # so the client still gets the error page.
        status = self.status.encode("latin-1")
        block = (self.header_block + "\r\n").encode("latin-1")
        self.ecb.HttpStatusCode = int(self.status[:3])
        self.headers_sent = True
        self.ecb.SendResponseHeaders(status, block, True)

    def write(self, data):
        if not isinstance(data, bytes):
            raise TypeError(f"the application must write bytes, not {type(data).__name__}")
        if not self.headers_sent:
            self.send_headers()
        if data:
            self.ecb.WriteClient(data)


try:
    from _isapi_freeze import WsgiResponse as _NativeResponse
    from _isapi_freeze import wsgi_serve as _native_serve
except ImportError:  # pywin32's loader
    _NativeResponse = _native_serve = None


def _serve(app, ecb, python=False):
    """Runs the WSGI application `app` for the request of `ecb`; returns the HSE_STATUS_*
    that ends the request. The runtime's ``wsgi_serve`` and ``WsgiResponse`` do the work
    when it has them; else the Python twins ``_respond`` and ``_Response`` do (what runs
    under pywin32's loader; ``python=True`` asks for them, so that tests/e2e/wsgi.rs can
    check that the two answer alike)."""
    native = _native_serve is not None and not python
    response = _NativeResponse(ecb) if native else _Response(ecb)
    try:
        if native:
            _native_serve(app, ecb, response, _WSGI_KEYS, InputStream)
        else:
            _respond(app, ecb, response)
    except ExtensionError as error:
        # Sending failed: the client is gone, which is not the application's fault.
        print(f"isapi.wsgi: {_request_line(ecb)}: the client went away ({error})", file=sys.stderr)
        return isapicon.HSE_STATUS_ERROR
    except Exception:
        return _fail(ecb, response)
    return isapicon.HSE_STATUS_SUCCESS


def _environ(ecb):
    environ = cgi_environ(ecb)
    environ.update(_WSGI_KEYS)
    environ["wsgi.input"] = InputStream(ecb)
    environ["isapi.ecb"] = ecb
    return environ


def _respond(app, ecb, response):
    """Calls the application and sends what it returns (``serve`` in
    stub/runtime/src/wsgi.rs is the same, natively)."""
    result = app(_environ(ecb), response)
    try:
        # One block and no length (as wsgiref does): the length is known, so the response
        # need not be chunked.
        if (isinstance(result, (list, tuple)) and len(result) == 1 and response.status
                and not response.headers_sent and not response.has_length()):
            response.add_length(len(result[0]))
        for data in result:
            if not isinstance(data, bytes):
                raise TypeError(f"the application must yield bytes, not {type(data).__name__}")
            if data:
                response.write(data)
        if not response.headers_sent:
            if not response.has_length():
                response.add_length(0)
            response.send_headers()
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def _request_line(ecb):
    try:
        query = _latin1(ecb.QueryString)
        return f"{_latin1(ecb.Method)} {_variable(ecb, 'URL')}{'?' + query if query else ''}"
    except Exception:
        return "(a request whose details are unavailable)"


def _fail(ecb, response):
    """The application raised: the traceback goes to the log; the client gets a generic 500
    page, or, once the response has started, the end of the connection."""
    print(f"isapi.wsgi: the application failed on {_request_line(ecb)}:", file=sys.stderr)
    traceback.print_exc(file=sys.stderr)
    if response.headers_sent:
        return isapicon.HSE_STATUS_ERROR
    page = _error_page()
    try:
        ecb.HttpStatusCode = 500
        ecb.SendResponseHeaders(
            b"500 Internal Server Error",
            b"Content-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(page),
            True,
        )
        ecb.WriteClient(page)
    except ExtensionError:
        return isapicon.HSE_STATUS_ERROR
    return isapicon.HSE_STATUS_SUCCESS


class WSGIExtension(SimpleExtension):
    "WSGI application (isapi.wsgi)"

    def __init__(self, app):
        SimpleExtension.__init__(self)
        self.app = app

    def HttpExtensionProc(self, ecb):
        return _serve(self.app, ecb)


class ThreadedWSGIExtension(ThreadPoolExtension):
    "WSGI application (isapi.wsgi, threaded)"

    def __init__(self, app):
        ThreadPoolExtension.__init__(self)
        self.app = app

    def Dispatch(self, ecb):
        status = _serve(self.app, ecb)
        ecb.DoneWithSession(status)
