"""The first module the isapi-freeze runtime runs, from the app archive.

It installs the importer that serves modules from the archive in memory, sets what
pywin32 scripts expect of a frozen ISAPI DLL (sys.frozen, sys.isapidllhandle), and holds
the dispatch logic behind each ISAPI entry point: pywin32's semantics, with errors logged
and turned into a 500 response.
"""

import sys
import traceback

import _isapi_freeze

# Set by start().
ARCHIVE = None
SCRIPT = None
_names = frozenset()
_extension = None
_filter = None

# From httpext.h / httpfilt.h (isapi.isapicon has them all; the boot module needs only these
# before the script's own imports run).
HSE_STATUS_ERROR = 4
SF_STATUS_REQ_NEXT_NOTIFICATION = 0x8000001
SF_STATUS_REQ_ERROR = 0x8000003

ERROR_PAGE = (
    b"<html><head><title>500 Internal Server Error</title></head><body>"
    b"<h1>Internal Server Error</h1><p>The application failed to handle this request. "
    b"The details are in the application's log.</p></body></html>"
)


class ArchiveImporter:
    """Finds and loads modules from the app archive: a path-entry finder for one folder of
    the archive (``prefix``, "" for its root) and the loader of what it finds."""

    def __init__(self, prefix):
        self.prefix = prefix

    def __repr__(self):
        return f"<ArchiveImporter {ARCHIVE!r} {self.prefix!r}>"

    def find_spec(self, fullname, target=None):
        import importlib.machinery

        leaf = fullname.rpartition(".")[2]
        base = self.prefix + leaf
        if base + "/__init__.pyc" in _names:
            member, package = base + "/__init__.pyc", True
        elif base + ".pyc" in _names:
            member, package = base + ".pyc", False
        else:
            return None
        spec = importlib.machinery.ModuleSpec(
            fullname, self, origin=_archive_path(member), is_package=package
        )
        spec.has_location = True
        if package:
            spec.submodule_search_locations = [_archive_path(base)]
        return spec

    def invalidate_caches(self):
        pass

    # Loader protocol.
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        code = self._code(module.__spec__.origin)
        exec(code, module.__dict__)

    def get_code(self, fullname):
        spec = self.find_spec(fullname)
        if spec is None:
            raise ImportError(f"no module named {fullname!r} in the app archive", name=fullname)
        return self._code(spec.origin)

    def get_source(self, fullname):
        return None

    def is_package(self, fullname):
        spec = self.find_spec(fullname)
        if spec is None:
            raise ImportError(f"no module named {fullname!r} in the app archive", name=fullname)
        return spec.submodule_search_locations is not None

    def get_filename(self, fullname):
        spec = self.find_spec(fullname)
        if spec is None:
            raise ImportError(f"no module named {fullname!r} in the app archive", name=fullname)
        return spec.origin

    def get_data(self, path):
        member = _member_of(path)
        if member is None:
            raise OSError(f"{path!r} is not in the app archive")
        try:
            return _isapi_freeze.archive_read(member)
        except KeyError:
            raise FileNotFoundError(path) from None

    def _code(self, origin):
        import importlib.util
        import marshal

        member = _member_of(origin)
        data = _isapi_freeze.archive_read(member)
        if data[:4] != importlib.util.MAGIC_NUMBER:
            raise ImportError(f"{member} in the app archive was compiled for another Python version")
        return marshal.loads(memoryview(data)[16:])


def _archive_path(member):
    return ARCHIVE + "\\" + member.replace("/", "\\")


def _member_of(path):
    """The archive member for a path under ARCHIVE, or None."""
    if not path.startswith(ARCHIVE + "\\"):
        return None
    return path[len(ARCHIVE) + 1:].replace("\\", "/")


def _path_hook(path):
    if path == ARCHIVE:
        return ArchiveImporter("")
    member = _member_of(path)
    if member is not None:
        return ArchiveImporter(member.rstrip("/") + "/")
    raise ImportError("not the app archive", path=path)


class LogWriter:
    """sys.stdout / sys.stderr of an ISAPI DLL: whole lines go to the extension's log."""

    encoding = "utf-8"
    errors = "backslashreplace"

    def __init__(self, name):
        self.name = name
        self._pending = ""

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            _isapi_freeze.log(f"{self.name}: {line}")
        return len(text)

    def flush(self):
        if self._pending:
            _isapi_freeze.log(f"{self.name}: {self._pending}")
            self._pending = ""

    def isatty(self):
        return False

    def writable(self):
        return True


def start(kind, script, archive, handle):
    """Called once by the runtime after the interpreter starts."""
    global ARCHIVE, SCRIPT, _names
    ARCHIVE, SCRIPT = archive, script
    _names = frozenset(_isapi_freeze.archive_names())
    sys.path_hooks.insert(0, _path_hook)
    sys.path.insert(0, ARCHIVE)
    sys.path_importer_cache.clear()
    if kind == "dll":
        sys.frozen = "dll"
        sys.isapidllhandle = handle
        sys.stdout = LogWriter("stdout")
        sys.stderr = LogWriter("stderr")
    else:
        sys.frozen = "console_exe"


def _log_exception(what):
    """Logs the exception being handled, with its traceback, in the extension's log and the
    Windows Event Log."""
    _isapi_freeze.log_error(f"{what}\n{traceback.format_exc().rstrip()}")


def _import_script():
    import importlib

    return importlib.import_module(SCRIPT)


# Extensions -----------------------------------------------------------------------------

def get_extension_version(vi):
    """Imports the script, calls __ExtensionFactory__() and its GetExtensionVersion(vi).
    Returns whether the extension may serve requests."""
    global _extension
    try:
        module = _import_script()
        factory = getattr(module, "__ExtensionFactory__", None)
        if factory is None:
            _isapi_freeze.log(f"{SCRIPT} defines no __ExtensionFactory__: it is not an ISAPI extension")
            return False
        _extension = factory()
        result = _extension.GetExtensionVersion(vi)
    except Exception:
        _log_exception(f"GetExtensionVersion of {SCRIPT} failed:")
        return False
    return True if result is None else bool(result)


def _request_line(ecb):
    try:
        method = ecb.Method.decode("latin-1")
        url = ecb.GetServerVariable("URL", b"").decode("latin-1")
        query = ecb.QueryString.decode("latin-1")
        return f"{method} {url}{'?' + query if query else ''}"
    except Exception:
        return "(request details unavailable)"


def _fail_request(ecb, why):
    """Logs the current exception for this request and answers 500 if nothing was sent."""
    _log_exception(f"{why} for {_request_line(ecb)}:")
    try:
        ecb.HttpStatusCode = 500
        if not ecb._response_started:
            ecb.SendResponseHeaders(
                "500 Internal Server Error",
                f"Content-Type: text/html\r\nContent-Length: {len(ERROR_PAGE)}\r\n\r\n",
                False,
            )
            ecb.WriteClient(ERROR_PAGE)
    except Exception:
        # The session may already be over (DoneWithSession was called); nothing to send.
        pass
    return HSE_STATUS_ERROR


def http_extension_proc(ecb):
    if _extension is None:
        return HSE_STATUS_ERROR
    try:
        result = _extension.HttpExtensionProc(ecb)
        if not isinstance(result, int):
            raise TypeError(f"HttpExtensionProc must return an int (an HSE_STATUS_* value), not {result!r}")
        return result
    except Exception:
        return _fail_request(ecb, "HttpExtensionProc failed")


def terminate_extension(flags):
    if _extension is None:
        return True
    try:
        result = _extension.TerminateExtension(flags)
    except Exception:
        _log_exception(f"TerminateExtension of {SCRIPT} failed:")
        return False
    return True if result is None else bool(result)


# Filters --------------------------------------------------------------------------------

def get_filter_version(fv):
    global _filter
    try:
        module = _import_script()
        factory = getattr(module, "__FilterFactory__", None)
        if factory is None:
            _isapi_freeze.log(f"{SCRIPT} defines no __FilterFactory__: it is not an ISAPI filter")
            return False
        _filter = factory()
        result = _filter.GetFilterVersion(fv)
    except Exception:
        _log_exception(f"GetFilterVersion of {SCRIPT} failed:")
        return False
    return True if result is None else bool(result)


def http_filter_proc(notification):
    # The filter context object is part of the complete runtime (not yet here): refuse
    # loudly rather than pretend the notification was handled.
    _isapi_freeze.log(
        f"filter notification {notification:#x} not handled: filter contexts are not implemented yet"
    )
    return SF_STATUS_REQ_ERROR


def terminate_filter(flags):
    if _filter is None:
        return True
    try:
        result = _filter.TerminateFilter(flags)
    except Exception:
        _log_exception(f"TerminateFilter of {SCRIPT} failed:")
        return False
    return True if result is None else bool(result)


# The install executable -----------------------------------------------------------------

def run_main():
    """Runs the script as __main__ (the installer exe). SystemExit propagates.

    A script with no install code of its own (it ran to its end without handing the
    command line to isapi.install) still installs: ``SCRIPT.exe install|remove|...`` then
    runs isapi.install with the defaults given when freezing (--site, --vpath)."""
    import runpy

    runpy.run_module(SCRIPT, run_name="__main__", alter_sys=True)
    install = sys.modules.get("isapi.install")
    if len(sys.argv) < 2 or (install is not None and install._handled):
        return
    import importlib

    import _isapi_freeze_options as options
    from isapi import install

    module = importlib.import_module(SCRIPT)
    params = install.default_parameters(module, options.SITE, options.VPATH)
    install.HandleCommandLine(params)
