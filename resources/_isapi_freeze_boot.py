"""The first module the isapi-freeze runtime runs, from the app archive.

It installs the importer that serves modules from the archive in memory, sets what
pywin32 scripts expect of a frozen ISAPI DLL (sys.frozen, sys.isapidllhandle), and holds
the dispatch logic behind each ISAPI entry point: pywin32's semantics, with errors logged
and turned into a 500 response.

Two frozen apps for one CPython version in one process share its interpreter, each with its
own instance of this module (its index in the runtime: _APP). The first app's instance is
sys.modules["_isapi_freeze_boot"]; a later app's keeps its archive after the first's on
sys.path, and imports the modules it ships with other contents than an earlier app under a
private package of its own (_PRIVATE), so that each app runs its own copy.
"""

import _imp
import _thread
import marshal
import sys

# The import system's own modules, frozen into python3XY.dll: the `importlib` package itself
# (with the standard library the app uses) is imported from the archive, by this module's
# importer, so the importer cannot import it.
import _frozen_importlib as _bootstrap
import _frozen_importlib_external as _bootstrap_external

import _isapi_freeze

# Set by start(). ARCHIVE is the path of the DLL (or exe) holding the archive, DIST its folder.
# _APP is the app's index in the runtime (0: the app that started the interpreter).
_APP = 0
ARCHIVE = None
DIST = None
SCRIPT = None
_names = frozenset()
# Every folder of the archive ("a", "a/b", ...): namespace packages.
_folders = frozenset()
# The top-level modules and packages of the app and its third-party packages, from the
# freezer: their paths (__file__, __path__) are in the output folder, where their data files
# are, so that code that opens files beside __file__ finds them. The standard library's and
# isapi-freeze's own keep their path inside the archive (ARCHIVE\...).
_app_modules = frozenset()
_dll_directory = None
# The top-level modules this app ships with other contents than an app that was in the
# process before it: imported as _PRIVATE.NAME, by the app's own modules, through the
# __import__ of their builtins (_own_builtins).
_private = frozenset()
_PRIVATE = None
_own_builtins = None
_extension = None
_filter = None
# Held while the script is reloaded after an InternalReloadException.
_reload_lock = _thread.allocate_lock()

# From httpext.h / httpfilt.h (isapi.isapicon has them all; the boot module needs only these
# before the script's own imports run).
HSE_STATUS_ERROR = 4
SF_STATUS_REQ_NEXT_NOTIFICATION = 0x8000002
SF_STATUS_REQ_ERROR = 0x8000004

ERROR_PAGE = (
    b"<html><head><title>500 Internal Server Error</title></head><body>"
    b"<h1>Internal Server Error</h1><p>The application failed to handle this request. "
    b"The details are in the application's log.</p></body></html>"
)


class ArchiveImporter:
    """Finds and loads modules from the app archive: a path-entry finder for one folder of
    the archive (``prefix``, "" for its root) and the loader of what it finds. ``root`` is
    the path the folder's modules say they are under: ARCHIVE, or DIST for the app's."""

    def __init__(self, prefix, root=None):
        self.prefix = prefix
        self.root = root

    def __repr__(self):
        return f"<ArchiveImporter {self.root or ARCHIVE!r} {self.prefix!r}>"

    def _root_of(self, fullname):
        if self.root is not None:
            return self.root
        return DIST if _own_name(fullname) in _app_modules else ARCHIVE

    def find_spec(self, fullname, target=None):
        leaf = fullname.rpartition(".")[2]
        base = self.prefix + leaf
        root = self._root_of(fullname)
        if base + "/__init__.pyc" in _names:
            member, package = base + "/__init__.pyc", True
        elif base + ".pyc" in _names:
            member, package = base + ".pyc", False
        else:
            return self._extension_or_namespace(fullname, base, root)
        spec = _bootstrap.ModuleSpec(fullname, self, origin=_path(root, member), is_package=package)
        spec.has_location = True
        if package:
            spec.submodule_search_locations = [_path(root, base)]
        return spec

    def _extension_or_namespace(self, fullname, base, root):
        """An extension module of an archived package, placed as a file at the same path in
        the output folder (a .pyd cannot be loaded from memory); else a namespace package
        if the archive has the folder."""
        import os

        if self.prefix:
            stem = os.path.join(DIST, *base.split("/"))
            for suffix in _imp.extension_suffixes():
                if os.path.isfile(stem + suffix):
                    loader = _bootstrap_external.ExtensionFileLoader(fullname, stem + suffix)
                    return _bootstrap_external.spec_from_file_location(fullname, stem + suffix, loader=loader)
        if base in _folders:
            spec = _bootstrap.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = [_path(root, base)]
            return spec
        return None

    def invalidate_caches(self):
        pass

    def get_resource_reader(self, fullname):
        """importlib.resources support: the app's packages have their data files in the
        output folder; the standard library's are in the archive."""
        folder = fullname.replace(".", "/")
        if self._root_of(_own_name(fullname).partition(".")[0]) == DIST:
            return DiskResources(_path(DIST, folder))
        return ArchiveResources(folder)

    # Loader protocol.
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        if _own_builtins is not None and _own_name(module.__name__).partition(".")[0] in _app_modules:
            module.__dict__["__builtins__"] = _own_builtins
        exec(self._code(module.__spec__.origin), module.__dict__)

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
        if member is not None and member in _names:
            return _isapi_freeze.archive_read(_APP, member)
        if path.startswith(DIST + "\\"):
            # The app's data files are in the output folder.
            with open(path, "rb") as f:
                return f.read()
        if member is None:
            raise OSError(f"{path!r} is not in the app archive")
        raise FileNotFoundError(path)

    def _code(self, origin):
        member = _member_of(origin)
        data = _isapi_freeze.archive_read(_APP, member)
        if data[:4] != _bootstrap_external.MAGIC_NUMBER:
            raise ImportError(f"{member} in the app archive was compiled for another Python version")
        return marshal.loads(memoryview(data)[16:])


class ArchiveResources:
    """importlib.resources' reader for a package of the archive: files() is a zipfile.Path
    over the archive's bytes (read once, on first use)."""

    _zip = None

    def __init__(self, folder):
        self.folder = folder

    def files(self):
        import io
        import zipfile

        if ArchiveResources._zip is None:
            ArchiveResources._zip = zipfile.ZipFile(io.BytesIO(_isapi_freeze.archive_bytes(_APP)))
        return zipfile.Path(ArchiveResources._zip, self.folder + "/")


class DiskResources:
    """importlib.resources' reader for an app package: its data files are in the output
    folder."""

    def __init__(self, folder):
        self.folder = folder

    def files(self):
        import pathlib

        return pathlib.Path(self.folder)


def _own_name(fullname):
    """A module's name as the app ships it: without the private package's prefix."""
    if _PRIVATE is not None and fullname.startswith(_PRIVATE + "."):
        return fullname[len(_PRIVATE) + 1:]
    return fullname


def _path(root, member):
    return root + "\\" + member.replace("/", "\\")


def _member_of(path):
    """The archive member for a path under ARCHIVE, or under DIST in one of the app's
    packages; else None."""
    if path.startswith(ARCHIVE + "\\"):
        return path[len(ARCHIVE) + 1:].replace("\\", "/")
    if path.startswith(DIST + "\\"):
        member = path[len(DIST) + 1:].replace("\\", "/")
        if member.partition("/")[0].partition(".")[0] in _app_modules:
            return member
    return None


def _path_hook(path):
    if path == ARCHIVE:
        return ArchiveImporter("")
    member = _member_of(path)
    if member is not None:
        root = ARCHIVE if path.startswith(ARCHIVE + "\\") else DIST
        return ArchiveImporter(member.rstrip("/") + "/", root)
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


class _BeforeSysPath:
    """The importer of `encodings` while Python starts, before sys.path and its hooks exist
    (see early()): finds the package and its modules in the archive by name."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname.partition(".")[0] != "encodings":
            return None
        package = fullname.rpartition(".")[0]
        return ArchiveImporter(package.replace(".", "/") + "/" if package else "").find_spec(fullname)


def _open_archive(archive, app):
    global ARCHIVE, DIST, _APP, _names, _folders
    if (ARCHIVE, _APP) == (archive, app):
        return  # early() did
    ARCHIVE, _APP = archive, app
    DIST = archive.rpartition("\\")[0]
    _names = frozenset(_isapi_freeze.archive_names(_APP))
    # Every folder above a member, from the few distinct folders members are in.
    folders = set()
    for folder in {name.rpartition("/")[0] for name in _names}:
        while folder and folder not in folders:
            folders.add(folder)
            folder = folder.rpartition("/")[0]
    _folders = frozenset(folders)


def early(archive):
    """Called by the runtime of the app that starts the interpreter, between CPython's two
    start-up phases, where only built-in and frozen modules import: Python's next step
    imports `encodings`, which the freezer put in the archive (CPython 3.11-3.13), and reads
    it from memory here rather than from a zip on disk."""
    _open_archive(archive, 0)
    sys.meta_path.insert(0, _BeforeSysPath)


def start(kind, script, archive, handle, app=0):
    """Called once by the runtime after the interpreter starts (app 0), or when another
    frozen app joins the running interpreter (app 1, 2, ...)."""
    global SCRIPT, _app_modules
    SCRIPT = script
    _open_archive(archive, app)
    # From now on the archive's path hook finds `encodings`' other modules, through its
    # __path__ in the archive.
    if _BeforeSysPath in sys.meta_path:
        sys.meta_path.remove(_BeforeSysPath)
    sys.path_hooks.insert(0, _path_hook)
    if _APP == 0:
        sys.path.insert(0, ARCHIVE)
    else:
        # The first app's modules keep coming from its own archive. The output folder is
        # on sys.path for its top-level extension modules, as the first app's is.
        sys.path.append(ARCHIVE)
        sys.path.append(DIST)
    sys.path_importer_cache.clear()
    _app_modules = frozenset(_isapi_freeze.freeze_options(_APP)[2])
    # Extension modules load the DLLs they need from the output folder, which is not on the
    # DLL search path of IIS's worker process. What os.add_dll_directory does, without
    # importing os (an app that never needs os starts ~1.5 ms sooner under Wine): the folder
    # stays on the search path for the life of the process.
    import nt

    global _dll_directory
    _dll_directory = nt._add_dll_directory(DIST)
    if _APP > 0:
        _keep_own_modules_apart()
    elif kind == "dll":
        sys.frozen = "dll"
        sys.isapidllhandle = handle
        # Shared by every app in the process: a line goes to the log of the app whose call
        # the thread runs.
        sys.stdout = LogWriter("stdout")
        sys.stderr = LogWriter("stderr")
    else:
        sys.frozen = "console_exe"


def _keep_own_modules_apart():
    """For an app that joined a running interpreter: the top-level modules it ships with
    other contents than an earlier app are imported as its own copies, under _PRIVATE. What
    cannot be kept apart is logged: code that imports such a module by a name in a string
    (importlib.import_module, a framework's settings) gets the module of that name in
    sys.modules, which may be the other app's."""
    global _private, _PRIVATE, _own_builtins
    import builtins

    clashes = _isapi_freeze.clashing_modules(_APP)
    if not clashes:
        return
    _private = frozenset(name for name, _ in clashes)
    _PRIVATE = f"_isapi_freeze_app{_APP}"
    package = type(sys)(_PRIVATE)
    package.__spec__ = _bootstrap.ModuleSpec(_PRIVATE, None, is_package=True)
    package.__spec__.submodule_search_locations = package.__path__ = [ARCHIVE]
    package.__package__ = _PRIVATE
    sys.modules[_PRIVATE] = package
    # The builtins of this app's own modules: the real ones, as they are now, but for
    # __import__ (a copy, not a wrapper: CPython reads __builtins__ as a dict).
    _own_builtins = dict(builtins.__dict__)
    _own_builtins["__import__"] = _import_own
    for name, other in sorted(clashes):
        in_use = sys.modules.get(name)
        if in_use is not None:
            whose = f"the frozen app {other}'s copy is already imported"
        else:
            whose = f"the frozen app {other} ships another copy"
        _isapi_freeze.log(
            f"module {name}: {whose}; this app's import statements get its own copy (as {_PRIVATE}.{name}), "
            f"but code that imports {name!r} by name at run time (importlib.import_module, a framework's "
            f"settings) gets the module of that name in sys.modules, which may be the frozen app {other}'s: "
            "to keep the two apps fully apart give each an application pool of its own"
        )


def _import_own(name, globals=None, locals=None, fromlist=(), level=0):
    """__import__ of this app's own modules: a top-level name in _private is this app's
    copy, _PRIVATE.NAME."""
    if level == 0 and name.partition(".")[0] in _private:
        module = __import__(f"{_PRIVATE}.{name}", globals, locals, fromlist, 0)
        if fromlist:
            return module
        return sys.modules[f"{_PRIVATE}.{name.partition('.')[0]}"]
    return __import__(name, globals, locals, fromlist, level)


def _log_exception(what):
    """Logs the exception being handled, with its traceback, in the extension's log and the
    Windows Event Log."""
    # Imported here, not at start-up: traceback brings linecache, tokenize and re, and every
    # millisecond of start-up delays the first response.
    import traceback

    _isapi_freeze.log_error(f"{what}\n{traceback.format_exc().rstrip()}")


def _import_script():
    import importlib

    if SCRIPT in _private:
        return importlib.import_module(f"{_PRIVATE}.{SCRIPT}")
    return importlib.import_module(SCRIPT)


def _make(factory, kind):
    """Calls the script's factory (`kind` "Extension": __ExtensionFactory__, "Filter":
    __FilterFactory__) and returns what it made: an object with Get{kind}Version.

    A factory that returns a factory is an easy slip (``return isapi.wsgi.factory(app)``,
    where factory(app) already is the factory; or ``return MyExtension``): what it returned
    is called once more when it takes no arguments. Anything else raises an error that
    says what to write instead."""
    name, method = f"__{kind}Factory__", f"Get{kind}Version"
    made = factory()
    if _serves(made, method):
        return made
    returned = f"{name}() returned {made!r}"
    advice = f"{name} must return the {kind.lower()} object, e.g. `return My{kind}()`"
    if callable(made) and _takes_no_arguments(made):
        again = made()
        if _serves(again, method):
            _isapi_freeze.log(f"{SCRIPT}: {returned}, a factory: called it once more")
            return again
        raise TypeError(f"{returned}, and calling that returned {again!r}: neither has {method}. {advice}")
    if callable(made) and kind == "Extension":
        # A callable that needs arguments is most likely the WSGI application itself.
        app = getattr(made, "__name__", "application")
        advice = f"For a WSGI application write `{name} = isapi.wsgi.factory({app})`; else {advice}"
    raise TypeError(f"{returned}, which has no {method}. {advice}")


def _serves(made, method):
    """Whether `made` is an object with `method`; a class has the method too, unbound."""
    return not isinstance(made, type) and hasattr(made, method)


def _takes_no_arguments(function):
    """Whether `function` can be called with no arguments: a factory can, a WSGI
    application cannot."""
    # Imported here: inspect is slow to import and only a slip in the script gets here.
    import inspect

    try:
        inspect.signature(function).bind()
    except (TypeError, ValueError):
        # Arguments are needed, or the callable has no signature to read (a built-in):
        # either way not a factory a script meant to return.
        return False
    return True


# Extensions -----------------------------------------------------------------------------

def _is_reload_request(error):
    """Whether `error` is isapi.InternalReloadException, a script's request to be reloaded."""
    isapi = sys.modules.get("isapi")
    wanted = getattr(isapi, "InternalReloadException", None)
    return wanted is not None and isinstance(error, wanted)


def _reload_extension(stale):
    """pywin32's reload: TerminateExtension(0) on the extension that asked, a fresh import
    of the script (from the archive), its factory again, GetExtensionVersion(None). Errors
    of the terminate and init calls are logged and ignored, as pywin32 does; a failed
    import or factory raises, which fails the call that asked for the reload."""
    global _extension
    import importlib

    with _reload_lock:
        if _extension is not stale:
            # Another request asked at the same time and the reload is done.
            return
        _isapi_freeze.log(f"{SCRIPT} raised InternalReloadException: reloading it")
        try:
            stale.TerminateExtension(0)
        except Exception:
            _log_exception(f"TerminateExtension(0) of {SCRIPT} before the reload failed:")
        module = importlib.reload(_import_script())
        _extension = _make(module.__ExtensionFactory__, "Extension")
        try:
            _extension.GetExtensionVersion(None)
        except Exception:
            _log_exception(f"GetExtensionVersion(None) of the reloaded {SCRIPT} failed:")


def _call_extension(method, *args):
    """Calls `method` of the extension; if it raises InternalReloadException, reloads the
    script and makes the same call once more, on the new extension."""
    extension = _extension
    try:
        return getattr(extension, method)(*args)
    except Exception as error:
        if not _is_reload_request(error):
            raise
    _reload_extension(extension)
    return getattr(_extension, method)(*args)


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
        _extension = _make(factory, "Extension")
        result = _call_extension("GetExtensionVersion", vi)
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


def _error_page():
    """The 500 page for the exception being handled (see isapi._error_page)."""
    try:
        from isapi import _error_page as page
    except Exception:
        return ERROR_PAGE
    return page()


def _fail_request(ecb, why):
    """Logs the current exception for this request and answers 500 if nothing was sent."""
    _log_exception(f"{why} for {_request_line(ecb)}:")
    try:
        ecb.HttpStatusCode = 500
        if not ecb._response_started:
            page = _error_page()
            ecb.SendResponseHeaders(
                "500 Internal Server Error",
                f"Content-Type: text/html\r\nContent-Length: {len(page)}\r\n\r\n",
                False,
            )
            ecb.WriteClient(page)
    except Exception:
        # The session may already be over (DoneWithSession was called); nothing to send.
        pass
    return HSE_STATUS_ERROR


def _dword(result):
    """An int result as pywin32 hands it to IIS: a C long (one out of its range is -1),
    taken as the DWORD the entry point returns."""
    if not -(2**31) <= result < 2**31:
        result = -1
    return result & 0xFFFFFFFF


def http_extension_proc(ecb):
    # Every request: _call_extension and _dword written out, one Python call for the
    # extension's alone (a call costs as much as a small handler's line).
    extension = _extension
    if extension is None:
        return HSE_STATUS_ERROR
    try:
        try:
            result = extension.HttpExtensionProc(ecb)
        except Exception as error:
            if not _is_reload_request(error):
                raise
            _reload_extension(extension)
            result = _extension.HttpExtensionProc(ecb)
        if type(result) is int and 0 <= result < 2**31:
            return result
        if not isinstance(result, int):
            raise TypeError(f"HttpExtensionProc must return an int (an HSE_STATUS_* value), not {result!r}")
        return _dword(result)
    except BaseException:
        # SystemExit and KeyboardInterrupt too: a request cannot end the server's process
        # (under pywin32 SystemExit does, README's row `system-exit`).
        return _fail_request(ecb, "HttpExtensionProc failed")


def terminate_extension(flags):
    if _extension is None:
        return True
    try:
        result = _call_extension("TerminateExtension", flags)
    except Exception:
        _log_exception(f"TerminateExtension of {SCRIPT} failed:")
        return False
    return True if result is None else bool(result)


# Filters --------------------------------------------------------------------------------

def _reload_filter(stale):
    """The reload of _reload_extension, for the filter: TerminateFilter(0) on the filter that
    asked, a fresh import of the script, __FilterFactory__() again, GetFilterVersion(None)."""
    global _filter
    import importlib

    with _reload_lock:
        if _filter is not stale:
            return
        _isapi_freeze.log(f"{SCRIPT} raised InternalReloadException in its filter: reloading it")
        try:
            stale.TerminateFilter(0)
        except Exception:
            _log_exception(f"TerminateFilter(0) of {SCRIPT} before the reload failed:")
        module = importlib.reload(_import_script())
        _filter = _make(module.__FilterFactory__, "Filter")
        try:
            _filter.GetFilterVersion(None)
        except Exception:
            _log_exception(f"GetFilterVersion(None) of the reloaded {SCRIPT} failed:")


def _call_filter(method, *args):
    """Calls `method` of the filter; on InternalReloadException, reloads the script and
    makes the same call once more, on the new filter."""
    current = _filter
    try:
        return getattr(current, method)(*args)
    except Exception as error:
        if not _is_reload_request(error):
            raise
    _reload_filter(current)
    return getattr(_filter, method)(*args)


def get_filter_version(fv):
    global _filter
    try:
        module = _import_script()
        factory = getattr(module, "__FilterFactory__", None)
        if factory is None:
            _isapi_freeze.log(f"{SCRIPT} defines no __FilterFactory__: it is not an ISAPI filter")
            return False
        _filter = _make(factory, "Filter")
        result = _call_filter("GetFilterVersion", fv)
    except Exception:
        _log_exception(f"GetFilterVersion of {SCRIPT} failed:")
        return False
    return True if result is None else bool(result)


def http_filter_proc(fc):
    """Calls the filter's HttpFilterProc(fc). None means SF_STATUS_REQ_NEXT_NOTIFICATION, an
    int is returned as is; anything else, or an exception, is logged and the server is told
    SF_STATUS_REQ_ERROR (IIS then fails the request)."""
    if _filter is None:
        return SF_STATUS_REQ_ERROR
    try:
        result = _call_filter("HttpFilterProc", fc)
        if result is None:
            return SF_STATUS_REQ_NEXT_NOTIFICATION
        if not isinstance(result, int):
            raise TypeError(f"HttpFilterProc must return an int (an SF_STATUS_* value) or None, not {result!r}")
        return result & 0xFFFFFFFF
    except Exception:
        _log_exception(f"HttpFilterProc failed for notification {_notification_name(fc)}:")
        return SF_STATUS_REQ_ERROR


def _notification_name(fc):
    try:
        from isapi import isapicon

        kind = fc.NotificationType
        for name, value in vars(isapicon).items():
            if name.startswith("SF_NOTIFY_") and not name.startswith("SF_NOTIFY_ORDER") and value == kind:
                return name
        return f"{kind:#x}"
    except Exception:
        return "(unknown)"


def terminate_filter(flags):
    if _filter is None:
        return True
    try:
        result = _call_filter("TerminateFilter", flags)
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

    from isapi import install

    site, vpath, _ = _isapi_freeze.freeze_options(_APP)
    module = importlib.import_module(SCRIPT)
    params = install.default_parameters(module, site, vpath)
    install.HandleCommandLine(params)
