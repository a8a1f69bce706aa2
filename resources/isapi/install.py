"""Installs a frozen ISAPI extension or filter into IIS 7 or later, with pywin32's API.

A pywin32-style script ends with ``HandleCommandLine(params)``; run as ``SCRIPT.exe
install`` it makes IIS serve the extension beside it, and ``SCRIPT.exe remove`` takes
back exactly what install added. Unlike pywin32's installer this needs no IIS 6 Metabase
Compatibility: it plans the change to applicationHost.config (an application pool, the
application, the handler mapping, the ISAPI restriction entry, filters), then applies it
with appcmd.exe, or by rewriting a configuration file given with ``--config`` in one
step. Every failure exits non-zero with what went wrong and where.
"""

import copy
import difflib
import hashlib
import inspect
import json
import ntpath
import os
import shutil
import stat
import subprocess
import sys
import time
import traceback

from isapi import _iisconfig
from isapi._iisconfig import Element, Item, Step

_DEFAULT_SERVER_NAME = "Default Web Site"
_DEFAULT_HEADERS = "X-Powered-By: Python"
_APP_POOLED = 2

# pywin32's defaults: the directory only runs the extension.
_DEFAULT_ACCESS_EXECUTE = True
_DEFAULT_ACCESS_READ = False
_DEFAULT_ACCESS_WRITE = False
_DEFAULT_ACCESS_SCRIPT = False

# Script map flags (IIS 6 metabase): the extension is a script engine, and IIS checks
# that the requested file exists.
MD_SCRIPTMAPFLAG_SCRIPT = 1
MD_SCRIPTMAPFLAG_CHECK_PATH_INFO = 4

# FilterParameters.Server = GLOBAL_FILTERS installs a filter for the whole server.
GLOBAL_FILTERS = "*"

IMAGE_FILE_MACHINE = {0x14C: 32, 0x8664: 64, 0xAA64: 64}

# Set once isapi.install has handled a command line, so that the installer exe knows the
# script did its own installing.
_handled = False


class FilterParameters:
    Name = None
    Description = None
    Path = None  # the loader beside SCRIPT.exe when None
    Server = None  # a site (default: the install's site), or GLOBAL_FILTERS
    AddExtensionFile = True
    AddExtensionFile_Enabled = True
    AddExtensionFile_GroupID = None
    AddExtensionFile_CanDelete = True
    AddExtensionFile_Description = None

    def __init__(self, **kw):
        self.__dict__.update(kw)


class VirtualDirParameters:
    Name = None  # the virtual path, e.g. "/hello"; "/" is the site's root
    Description = None
    AppProtection = _APP_POOLED
    Headers = _DEFAULT_HEADERS
    Path = None  # the physical folder; the output directory when None
    AccessExecute = _DEFAULT_ACCESS_EXECUTE
    AccessRead = _DEFAULT_ACCESS_READ
    AccessWrite = _DEFAULT_ACCESS_WRITE
    AccessScript = _DEFAULT_ACCESS_SCRIPT
    ContentIndexed = False
    EnableDirBrowsing = False
    EnableDefaultDoc = False
    DefaultDoc = None
    ScriptMaps = []
    ScriptMapUpdate = "end"  # 'start', 'end' or 'replace'
    Server = None

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def is_root(self):
        parent, name = self.split_path()
        return not parent and not name

    def split_path(self):
        return split_path(self.Name)


class ScriptMapParams:
    Extension = None  # "*" for every request, or ".ext"
    Module = None  # the loader beside SCRIPT.exe when None
    Flags = 5
    Verbs = ""  # "" for all verbs, else "GET,POST"
    AddExtensionFile = True
    AddExtensionFile_Enabled = True
    AddExtensionFile_GroupID = None
    AddExtensionFile_CanDelete = True
    AddExtensionFile_Description = None

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __str__(self):
        items = [self.Extension, self.Module, self.Flags]
        if self.Verbs:
            items.append(self.Verbs)
        return ",".join(str(item) for item in items)


class ISAPIParameters:
    ServerName = _DEFAULT_SERVER_NAME
    Filters = []
    VirtualDirs = []

    def __init__(self, **kw):
        self.__dict__.update(kw)


verbose = 1


def log(level, what):
    if verbose >= level:
        print(what)


class InstallationError(Exception):
    pass


class ItemNotFound(InstallationError):
    pass


class ConfigurationError(InstallationError):
    pass


def split_path(path):
    """The parent path and the last name of a virtual path: '/foo/bar' -> ['/foo', 'bar']."""
    if not path.startswith("/"):
        path = "/" + path
    return path.rsplit("/", 1)


def _call_hook(ob, hook_name, options, *extra_args):
    func = getattr(ob, hook_name, None)
    if func is not None:
        func(ob, options, *extra_args)


# What is being installed ---------------------------------------------------------------


class Target:
    """The frozen output directory being installed: its loader, name and bitness."""

    def __init__(self, loader):
        self.loader = loader
        # Windows paths whatever the platform, so that plans can be checked anywhere.
        self.dir = ntpath.dirname(loader)
        stem = ntpath.splitext(ntpath.basename(loader))[0]
        self.name = stem[1:] if stem.startswith("_") else stem
        self.pool = f"isapi-freeze-{self.name}"
        self.bits = None
        # The output directory on this machine; ``dir`` is where IIS finds it, which
        # differs for a farm (install --physical-path).
        self.local_dir = self.dir
        self.local_loader = loader

    def relocate(self, physical_path):
        """Installs for the folder at ``physical_path`` on the server (a farm node's copy
        of this folder, at the same path on every node), not for this folder."""
        path = physical_path.rstrip("\\/")
        if not ntpath.isabs(path) or not ntpath.splitdrive(path)[0]:
            raise ConfigurationError(
                f"--physical-path {physical_path!r} must be a full Windows path (e.g. D:\\apps\\{self.name})"
            )
        self.dir = path
        self.loader = ntpath.join(path, ntpath.basename(self.local_loader))

    def read_bitness(self):
        self.bits = pe_bitness(self.local_loader)
        return self.bits


def pe_bitness(path):
    """32 or 64, from the Machine field of a PE file's header."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        raise ConfigurationError(f"cannot read {path}: {e.strerror}") from None
    if head[:2] != b"MZ" or len(head) < 64:
        raise ConfigurationError(f"{path} is not a Windows DLL (no MZ header)")
    offset = int.from_bytes(head[60:64], "little")
    if head[offset : offset + 4] != b"PE\0\0":
        raise ConfigurationError(f"{path} is not a Windows DLL (no PE header)")
    machine = int.from_bytes(head[offset + 4 : offset + 6], "little")
    if machine not in IMAGE_FILE_MACHINE:
        raise ConfigurationError(f"{path} is for an unknown machine type {machine:#06x}")
    return IMAGE_FILE_MACHINE[machine]


def verify_manifest(directory):
    """Checks every file of the output directory against its manifest.json."""
    manifest_path = os.path.join(directory, "manifest.json")
    try:
        with open(manifest_path, "rb") as f:
            manifest = json.loads(f.read())
        files = manifest["files"]
    except OSError as e:
        raise ConfigurationError(
            f"cannot read {manifest_path}: {e.strerror}; install from the folder isapi-freeze wrote"
        ) from None
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(f"{manifest_path} is damaged; freeze again") from None
    for entry in files:
        path = os.path.join(directory, entry["path"].replace("/", os.sep))
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        except OSError as e:
            raise ConfigurationError(
                f"{path} is missing or unreadable ({e.strerror}): the output directory is incomplete; "
                "copy it again from the freeze"
            ) from None
        if digest.hexdigest() != entry["sha256"]:
            raise ConfigurationError(
                f"{path} does not match manifest.json (SHA-256 {digest.hexdigest()}, expected "
                f"{entry['sha256']}): the output directory changed after freezing; copy it again"
            )


def GetLoaderModuleName(mod_name, check_module=None):
    """The ISAPI DLL that IIS loads: ``_NAME.dll`` beside ``NAME.exe`` (or beside the
    script, unfrozen)."""
    base = os.path.splitext(mod_name)[0]
    path, base = os.path.split(base)
    return os.path.abspath(os.path.join(path, "_" + base + ".dll"))


def _patch_params_module(params, dll_name):
    for f in params.Filters:
        if f.Path is None:
            f.Path = dll_name
    for vd in params.VirtualDirs:
        for sm in vd.ScriptMaps:
            if sm.Module is None:
                sm.Module = dll_name


# The planned change ---------------------------------------------------------------------


def _bool(value):
    return "true" if value else "false"


def _site_name(config, wanted, path):
    """The name of the site that ``wanted`` (a name or an id, any case) means."""
    sites = config.node(("system.applicationHost", {}), ("sites", {}))
    names = []
    for site in sites.children if sites is not None else []:
        if site.tag != "site":
            continue
        name = site.attrs.get("name", "")
        names.append(name)
        if wanted.strip().lower() in (name.lower(), site.attrs.get("id", "").lower()):
            return name
    raise ItemNotFound(
        f"no web site matches {wanted!r} in {path} (sites: {', '.join(names) or 'none'}); "
        "choose one with --server NAME"
    )


def _access_policy(vd):
    parts = []
    if vd.AccessRead:
        parts.append("Read")
    if vd.AccessWrite:
        parts.append("Write")
    if vd.AccessExecute:
        parts.append("Execute")
    # On IIS 6 execute permission covered scripts too.
    if vd.AccessScript or vd.AccessExecute:
        parts.append("Script")
    return ", ".join(parts) or "None"


def _handler_path(extension):
    extension = (extension or "*").strip()
    if extension == "*" or extension.startswith("*"):
        return extension
    return "*" + (extension if extension.startswith(".") else "." + extension)


def processes(options):
    """``--processes N``: how many worker processes the pool runs (a web garden), or None."""
    value = getattr(options, "processes", None)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 2147483647:
        raise ConfigurationError(f"--processes {value!r} must be a whole number of worker processes, 1 or more")
    return number


_SIZE_UNITS = {"": 1, "K": 1 << 10, "KB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "G": 1 << 30, "GB": 1 << 30}
_UINT_MAX = 4294967295


def _size(option, value, units=True):
    """A number of bytes (with K, M or G: binary units), within IIS's uint."""
    text = str(value).strip().upper()
    digits = text.rstrip("KMGB") if units else text
    unit = text[len(digits) :]
    if digits.isdigit() and unit in _SIZE_UNITS and int(digits) * _SIZE_UNITS[unit] <= _UINT_MAX:
        return int(digits) * _SIZE_UNITS[unit]
    what = "bytes, or with K, M or G" if units else "characters"
    raise ConfigurationError(f"{option} {value!r} must be a number of {what}, at most {_UINT_MAX} bytes (IIS's uint)")


def request_filtering(options):
    """The app's requestFiltering element from --max-body, --max-query and
    --allow-double-escaping (IIS's defaults: 30,000,000 bytes, 2048, false), or None."""
    body = getattr(options, "max_body", None)
    query = getattr(options, "max_query", None)
    double = getattr(options, "allow_double_escaping", False)
    limits = {}
    if body is not None:
        limits["maxAllowedContentLength"] = str(_size("--max-body", body))
    if query is not None:
        limits["maxQueryString"] = str(_size("--max-query", query, units=False))
    if not limits and not double:
        return None
    attrs = {"allowDoubleEscaping": "true"} if double else {}
    return Element("requestFiltering", attrs, [Element("requestLimits", limits)] if limits else [])


def _process_model(options):
    number = processes(options)
    return [] if number is None else [Element("processModel", {"maxProcesses": str(number)})]


def _serves(application, folder):
    """Whether ``application`` (a config node) serves ``folder``: then it is this output
    folder's, made by another tool (Web Deploy's iisApp), and install takes it over."""
    root = application.find("virtualDirectory", {"path": "/"})
    physical = root.attrs.get("physicalPath", "") if root is not None else ""
    return ntpath.normcase(ntpath.normpath(physical)) == ntpath.normcase(ntpath.normpath(folder))


def plan(params, target, config, options):
    """Every element install adds, in the order it adds them."""
    server_option = getattr(options, "server", None)
    bitness = f"bitness{target.bits}"
    items = []
    apps = [vd for vd in params.VirtualDirs if not vd.is_root()]
    if apps:
        items.append(
            Item(
                "application pool",
                None,
                "system.applicationHost/applicationPools",
                Element(
                    "add",
                    {
                        "name": target.pool,
                        "managedRuntimeVersion": "",
                        "enable32BitAppOnWin64": _bool(target.bits == 32),
                    },
                    _process_model(options),
                ),
                ["name"],
            )
        )
    for vd in params.VirtualDirs:
        if not vd.Name:
            raise ConfigurationError("a VirtualDirParameters has no Name (its virtual path, e.g. '/hello')")
        if vd.ScriptMapUpdate not in ("start", "end", "replace"):
            raise ConfigurationError(f"Unknown ScriptMapUpdate option '{vd.ScriptMapUpdate}'")
        site = _site_name(config, server_option or vd.Server or params.ServerName, config.path)
        vpath = "/" + vd.Name.strip("/") if not vd.is_root() else ""
        location = site + vpath
        if vd.is_root():
            check_root_pool(config, target, site)
        if not vd.is_root():
            application = Item(
                "application",
                None,
                "system.applicationHost/sites",
                Element(
                    "application",
                    {"path": vpath, "applicationPool": target.pool},
                    [Element("virtualDirectory", {"path": "/", "physicalPath": vd.Path or target.dir})],
                ),
                ["path"],
                steps=[Step("site", {"name": site})],
            )
            application.site = site
            existing = config.lookup(application)
            if existing is not None and existing.attrs.get("applicationPool") != target.pool and not _serves(
                existing, vd.Path or target.dir
            ):
                raise ConfigurationError(
                    f"site {site!r} already has an application {vpath} (application pool "
                    f"{existing.attrs.get('applicationPool', 'the default')!r}) that this installer did not "
                    f"make; remove it or install under another path (--vpath when freezing, or the "
                    f"VirtualDirParameters Name)"
                )
            items.append(application)
        maps = vd.ScriptMaps or [ScriptMapParams(Extension="*", Flags=0)]
        for n, sm in enumerate(maps, start=1):
            flags = int(sm.Flags or 0)
            name = target.pool if n == 1 else f"{target.pool}-{n}"
            verbs = ",".join(v.strip() for v in (sm.Verbs or "").split(",") if v.strip()) or "*"
            items.append(
                Item(
                    "handler mapping",
                    location,
                    "system.webServer/handlers",
                    Element(
                        "add",
                        {
                            "name": name,
                            "path": _handler_path(sm.Extension),
                            "verb": verbs,
                            "modules": "IsapiModule",
                            "scriptProcessor": sm.Module or target.loader,
                            "resourceType": "File" if flags & MD_SCRIPTMAPFLAG_CHECK_PATH_INFO else "Unspecified",
                            "requireAccess": "Script" if flags & MD_SCRIPTMAPFLAG_SCRIPT else "None",
                            "preCondition": bitness,
                            # IIS holds back up to 4 MiB of an ISAPI response by default; 0
                            # sends each WriteClient as it comes, so that streamed (WSGI
                            # generator, server-sent events) responses are not held back.
                            "responseBufferLimit": "0",
                        },
                    ),
                    ["name"],
                    section_attrs={"accessPolicy": _access_policy(vd)},
                )
            )
        if vd.EnableDirBrowsing:
            items.append(
                Item(
                    "directory browsing",
                    location,
                    "system.webServer",
                    Element("directoryBrowse", {"enabled": "true"}),
                    [],
                )
            )
        filtering = request_filtering(options)
        if filtering is not None:
            items.append(Item("request filtering", location, "system.webServer/security", filtering, []))
        for ignored in ("DefaultDoc", "Headers"):
            if getattr(vd, ignored) not in (None, "", VirtualDirParameters.__dict__[ignored]):
                log(2, f"note: {ignored} of {vd.Name} is an IIS 6 setting; IIS 7+ takes it from the site")
    modules = set()
    for vd in params.VirtualDirs:
        for sm in vd.ScriptMaps or [None]:
            modules.add((sm.Module if sm is not None else None) or target.loader)
    for f in params.Filters:
        modules.add(f.Path or target.loader)
    for module in sorted(modules):
        items.append(
            Item(
                "ISAPI restriction",
                None,
                "system.webServer/security/isapiCgiRestriction",
                Element(
                    "add",
                    {
                        "path": module,
                        "allowed": "true",
                        "description": f"{target.name} (isapi-freeze)",
                    },
                ),
                ["path"],
            )
        )
    for f in params.Filters:
        if not f.Name:
            raise ConfigurationError("a FilterParameters has no Name")
        server = f.Server if f.Server is not None else params.ServerName
        if server_option and server != GLOBAL_FILTERS:
            server = server_option
        location = None if server == GLOBAL_FILTERS else _site_name(config, server, config.path)
        items.append(
            Item(
                "ISAPI filter",
                location,
                "system.webServer/isapiFilters",
                Element(
                    "filter",
                    {
                        "name": f.Name,
                        "path": f.Path or target.loader,
                        "enabled": "true",
                        "preCondition": bitness,
                    },
                ),
                ["name"],
            )
        )
    return items


def python_version_of(folder):
    """The CPython version (``3.12``) an application folder runs: a frozen app's
    manifest.json names its python3XY.dll, a folder with a python3XY.dll runs that one;
    None when neither tells (not a frozen app)."""
    try:
        with open(os.path.join(folder, "manifest.json"), "rb") as f:
            files = json.loads(f.read())["files"]
        for entry in files:
            if entry.get("role") == "python-dll":
                return _dll_version(entry["path"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    return next((v for v in map(_dll_version, names) if v is not None), None)


def _dll_version(name):
    """``python312.dll`` (any case) -> ``3.12``; None for any other name."""
    stem, ext = os.path.splitext(name.lower())
    digits = stem[len("python3"):]
    if ext != ".dll" or not stem.startswith("python3") or not digits.isdigit():
        return None
    return f"3.{digits}"


def filter_neighbours(config, items, target):
    """What to say about the applications that load this app's filters besides its own:
    IIS loads a filter registered on a site into the worker process of every application
    of that site, whatever its application pool, and a server-wide one into every worker.
    A frozen app there for the same CPython version shares its interpreter with this one;
    one for another version cannot load the filter. Returns (level, line) pairs."""
    sites = config.node(("system.applicationHost", {}), ("sites", {}))
    mine = python_version_of(target.local_dir) or f"{sys.version_info[0]}.{sys.version_info[1]}"
    server_defaults = sites.find("applicationDefaults", {}) if sites is not None else None
    server_pool = (server_defaults.attrs.get("applicationPool") if server_defaults is not None else None) or "DefaultAppPool"
    lines = []
    for item in items:
        if item.what != "ISAPI filter":
            continue
        others = []
        for site in sites.children if sites is not None else []:
            name = site.attrs.get("name", "")
            if site.tag != "site" or (item.location is not None and name != item.location):
                continue
            defaults = site.find("applicationDefaults", {})
            default_pool = (defaults.attrs.get("applicationPool") if defaults is not None else None) or server_pool
            for application in site.children:
                if application.tag != "application":
                    continue
                root = application.find("virtualDirectory", {"path": "/"})
                physical = root.attrs.get("physicalPath", "") if root is not None else ""
                if physical and same_folder(physical, target.dir):
                    continue
                pool = application.attrs.get("applicationPool") or default_pool
                others.append((name + application.attrs.get("path", "/").rstrip("/"), pool, physical))
        if not others:
            continue
        filter_name = item.element.attrs["name"]
        where = f"on site {item.location!r}" if item.location is not None else "server-wide"
        scope = "that site" if item.location is not None else "every site"
        lines.append(
            (
                1,
                f"note: the ISAPI filter {filter_name} is registered {where}: IIS loads it into the worker "
                f"process of every application of {scope}, whatever its application pool, so also of:",
            )
        )
        differing = []
        for app, pool, physical in others:
            version = python_version_of(os.path.expandvars(physical)) if physical else None
            if version is None:
                runs = "its Python version is unknown (not a frozen app)"
            elif version == mine:
                runs = f"Python {version}, as this app: its worker runs both apps in one interpreter"
            else:
                runs = f"Python {version}"
                differing.append((app, version))
            lines.append((1, f"  {app} (application pool {pool}, {physical or 'no physical path'}): {runs}"))
        for app, version in differing:
            lines.append(
                (
                    1,
                    f"warning: {app} runs Python {version} and this app Python {mine}: one process runs one "
                    f"CPython version, so in {app}'s worker the filter {filter_name} refuses to load; freeze "
                    "both apps for one CPython version, or register the filter on a site of its own",
                )
            )
    return lines


def check_modules(config, params):
    """The IIS features the plan needs must be installed and enabled. A feature's setup
    registers its module in globalModules and enables it in the server's <modules>; IIS
    loads a module only if both say so (the registry's InetStp\\Components values only
    record what setup did, and an offline configuration has no registry)."""
    needed = []
    if params.VirtualDirs:
        needed.append(("IsapiModule", "ISAPI Extensions", "Web-ISAPI-Ext", "IIS-ISAPIExtensions"))
    if params.Filters:
        needed.append(("IsapiFilterModule", "ISAPI Filters", "Web-ISAPI-Filter", "IIS-ISAPIFilter"))
    global_modules = config.node(("system.webServer", {}), ("globalModules", {}))
    server = config.node(("location", {"path": ""}), ("system.webServer", {}), ("modules", {}))
    if server is None:
        server = config.node(("system.webServer", {}), ("modules", {}))
    for module, feature, server_name, client_name in needed:
        if global_modules is None or global_modules.find("add", {"name": module}) is None:
            raise ConfigurationError(
                f"IIS's {feature} feature is not installed ({config.path} has no {module} in "
                f"globalModules). Install it: `Install-WindowsFeature {server_name}` on Windows Server, "
                f"`dism /online /enable-feature /featurename:{client_name}` elsewhere"
            )
        if server is not None and server.find("add", {"name": module}) is None:
            raise ConfigurationError(
                f"IIS's {feature} feature is installed but its module is not enabled: the server's <modules> "
                f"in {config.path} has no {module}. Enable it: `appcmd set config /section:system.webServer/modules "
                f"/+[name='{module}'] /commit:apphost`, or reinstall the feature ({server_name})"
            )


def _attr_or_default(config, node, defaults_path, name, fallback):
    """An attribute of ``node``, else of the collection's defaults element, else IIS's
    default; with where the value came from."""
    if node is not None and name in node.attrs:
        return node.attrs[name], None
    defaults = config.node(*defaults_path)
    if defaults is not None and name in defaults.attrs:
        return defaults.attrs[name], defaults.tag
    return fallback, "default"


def check_root_pool(config, target, site):
    """A virtual directory at a site's root runs in the pool of the site's root
    application, not in a pool of ours: its bitness must be the DLL's."""
    apphost = ("system.applicationHost", {})
    site_node = config.node(apphost, ("sites", {}), ("site", {"name": site}))
    root_app = site_node.find("application", {"path": "/"}) if site_node is not None else None
    pool, _ = _attr_or_default(
        config, root_app, [apphost, ("sites", {}), ("applicationDefaults", {})], "applicationPool", "DefaultAppPool"
    )
    pool_node = config.node(apphost, ("applicationPools", {}), ("add", {"name": pool}))
    value, source = _attr_or_default(
        config,
        pool_node,
        [apphost, ("applicationPools", {}), ("applicationPoolDefaults", {})],
        "enable32BitAppOnWin64",
        "false",
    )
    pool_bits = 32 if value.strip().lower() == "true" else 64
    if pool_bits == target.bits:
        return
    where = {None: "", "default": ", IIS's default"}.get(source, f", from {source}")
    raise ConfigurationError(
        f"application pool {pool!r}, which serves the root of site {site!r}, runs {pool_bits}-bit worker "
        f"processes (enable32BitAppOnWin64={value}{where}) and cannot load {target.loader}, a "
        f"{target.bits}-bit DLL. Set enable32BitAppOnWin64 to {_bool(target.bits == 32)} (`appcmd set apppool "
        f"\"{pool}\" /enable32BitAppOnWin64:{_bool(target.bits == 32)}`), or install under a path of its own "
        "(--vpath when freezing, or the VirtualDirParameters Name), which gets a pool of the DLL's bitness"
    )


# appcmd ---------------------------------------------------------------------------------


def _item_literal(element, keys=None):
    attrs = element.attrs if keys is None else {k: element.attrs[k] for k in keys}
    return "[" + ",".join(f"{k}='{v}'" for k, v in attrs.items()) + "]"


def appcmd_commands(item, change, section_missing=False):
    """The appcmd.exe arguments that make ``change`` ("added", "updated" or "removed") to
    ``item`` in the live configuration, one list per command."""
    el = item.element
    if item.section == "system.applicationHost/applicationPools":
        name = el.attrs["name"]
        settings = [
            f"/managedRuntimeVersion:{el.attrs['managedRuntimeVersion']}",
            f"/enable32BitAppOnWin64:{el.attrs['enable32BitAppOnWin64']}",
        ]
        model = el.children[0].attrs if el.children else {}
        if change == "added":
            extra = [f"/processModel.maxProcesses:{model['maxProcesses']}"] if model else []
            return [["add", "apppool", f"/name:{name}"] + settings + extra]
        if change == "updated":
            # Back to IIS's default of one process when --processes is not given again.
            extra = [f"/processModel.maxProcesses:{model.get('maxProcesses', '1')}"]
            return [["set", "apppool", name] + settings + extra]
        return [["delete", "apppool", name]]
    if item.section == "system.applicationHost/sites":
        path = el.attrs["path"]
        add = [
            "add",
            "app",
            f"/site.name:{item.site}",
            f"/path:{path}",
            f"/physicalPath:{el.children[0].attrs['physicalPath']}",
            f"/applicationPool:{el.attrs['applicationPool']}",
        ]
        delete = ["delete", "app", item.site + path]
        return {"added": [add], "updated": [delete, add], "removed": [delete]}[change]
    where = [item.location] if item.location is not None else []
    section = f"/section:{item.section}"
    if not item.key:
        # A section element of its own, such as directoryBrowse: appcmd names the section
        # by its full path, the element included.
        section = f"/section:{item.section}/{el.tag}"
        clear = ["clear", "config"] + where + [section, "/commit:apphost"]
        if change == "removed":
            return [clear]
        settings = [f"/{k}:{v}" for k, v in el.attrs.items()]
        settings += [f"/{child.tag}.{k}:{v}" for child in el.children for k, v in child.attrs.items()]
        set_ = ["set", "config"] + where + [section] + settings + ["/commit:apphost"]
        # Setting leaves what an earlier install set and this one does not: clear first.
        return [clear, set_] if change == "updated" else [set_]
    extra = []
    if section_missing:
        extra = [f"/{k}:{v}" for k, v in item.section_attrs.items()]
    add = ["set", "config"] + where + [section] + extra + ["/+" + _item_literal(el), "/commit:apphost"]
    delete = ["set", "config"] + where + [section, "/-" + _item_literal(el, item.key), "/commit:apphost"]
    return {"added": [add], "updated": [delete, add], "removed": [delete]}[change]


def command_line(argv):
    """A command as cmd.exe takes it, quoted as Windows programs unquote it."""
    return subprocess.list2cmdline(argv)


# Applying -------------------------------------------------------------------------------


def _windir():
    return os.environ.get("windir") or os.environ.get("SystemRoot") or "C:\\Windows"


def appcmd_path():
    return os.path.join(_windir(), "System32", "inetsrv", "appcmd.exe")


def live_config_path():
    return os.path.join(_windir(), "System32", "inetsrv", "config", "applicationHost.config")


def read_config(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigurationError(f"cannot read {path}: {e.strerror}") from None
    try:
        return _iisconfig.Config(data, path)
    except _iisconfig.ConfigError as e:
        raise ConfigurationError(str(e)) from None


def write_config(path, data, read=None):
    """Replaces ``path`` with ``data`` in one step, after a backup beside it. With ``read``
    (the bytes the change was planned from), refuses if the file no longer holds them:
    someone else changed it in between, and replacing it would lose their change."""
    reason = None
    try:
        # Windows refuses to replace a file with the read-only attribute; say so first.
        if getattr(os.stat(path), "st_file_attributes", 0) & stat.FILE_ATTRIBUTE_READONLY:
            reason = "the file is read-only"
        else:
            with open(path, "r+b"):
                pass
    except OSError as e:
        reason = e.strerror
    if reason is not None:
        raise InstallationError(
            f"cannot write {path}: {reason}; nothing was changed (clear its read-only attribute, or use an "
            "Administrator prompt)"
        )
    temp = path + ".isapi-freeze-new"
    snapshot = path + ".isapi-freeze-snapshot"
    backup = path + ".isapi-freeze-backup"
    try:
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # A snapshot first: it is compared with what was read, and only then becomes the
        # backup, so that a refusal leaves the folder (and any earlier backup) as it was.
        shutil.copyfile(path, snapshot)
        if read is not None:
            with open(snapshot, "rb") as f:
                if f.read() != read:
                    os.remove(temp)
                    os.remove(snapshot)
                    raise InstallationError(
                        f"{path} was changed by someone else while this ran; nothing was changed: "
                        "run the command again"
                    )
        os.replace(snapshot, backup)
        os.replace(temp, path)
    except OSError as e:
        for leftover in (temp, snapshot):
            try:
                os.remove(leftover)
            except OSError:
                pass
        raise InstallationError(
            f"cannot replace {path}: {e.strerror} ({e.filename}); nothing was changed"
        ) from None
    log(2, f"previous configuration saved as {backup}")


# The folders under the output directory that the application pool may write: the log
# (the DLL's first resort when something fails), and the app's own data folder if it
# declares one (install --data-dir NAME). Everything else is read and execute only.
LOG_DIR = "logs"


def data_dir(options):
    """The data folder ``--data-dir`` names (relative to the output directory), or None."""
    name = getattr(options, "data_dir", None)
    if not name:
        return None
    parts = [p for p in name.replace("/", "\\").split("\\") if p not in ("", ".")]
    if ntpath.isabs(name) or ntpath.splitdrive(name)[0] or not parts or ".." in parts:
        raise ConfigurationError(
            f"--data-dir {name!r} must name a folder inside the output directory (e.g. 'data'), "
            "so that it moves with it"
        )
    return "\\".join(parts)


def writable_dirs(options):
    """The folders (relative to the output directory) the pool identity may modify."""
    return [LOG_DIR] + [d for d in [data_dir(options)] if d and d.lower() != LOG_DIR]


def _acl_commands(target, grant, options):
    """The icacls lines that give the pool identity read and execute on the output
    directory and modify on its writable folders (or take the grants back)."""
    account = f"IIS AppPool\\{target.pool}"
    folders = [(target.dir, "RX")] + [(ntpath.join(target.dir, d), "M") for d in writable_dirs(options)]
    if grant:
        return [["icacls", folder, "/grant", f"{account}:(OI)(CI){rights}"] for folder, rights in folders]
    return [["icacls", folder, "/remove:g", account] for folder, _ in reversed(folders)]


def make_writable_dirs(target, options):
    """Creates the writable folders in the local output directory: the pool identity may
    not create them itself (it only reads the output directory)."""
    for name in writable_dirs(options):
        path = os.path.join(target.local_dir, name.replace("\\", os.sep))
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise InstallationError(f"cannot create {path}: {e.strerror}") from None


def apply(params, target, options, installing, rollback=False):
    """Plans the change to IIS's configuration and makes it (or prints it, dry).

    Installing where IIS serves an older output of this app (the same application pool at
    the same application) from another folder is an upgrade: every entry naming the old
    folder is switched to this one in one change, and the pool recycles. ``rollback``
    switches back to the folder that upgrade replaced."""
    config_path = getattr(options, "config", None)
    dry = getattr(options, "dry_run", False)
    show_appcmd = getattr(options, "print_appcmd", False)
    appcmd = appcmd_path()
    if config_path is None and not os.path.isfile(appcmd):
        raise InstallationError(
            f"IIS 7 or later is not installed here: {appcmd} does not exist (IIS Management "
            "Scripts and Tools provide it). On a machine without IIS, pass --config PATH to edit an "
            "applicationHost.config directly"
        )
    path = config_path or live_config_path()
    config = read_config(path)
    if installing:
        check_modules(config, params)
    items = plan(params, target, config, options)
    before = config.text
    changes = []
    installed = installed_folder(items, target, config)
    switch = None  # (from, to): the folders an upgrade or a rollback switches between
    if rollback:
        previous = read_previous(target)
        if installed is None:
            raise ConfigurationError(f"{target.name} is not installed in {path}: there is nothing to roll back")
        if not same_folder(installed, previous):
            if not same_folder(installed, target.dir):
                raise ConfigurationError(
                    f"IIS serves {target.name} from {installed}, which is neither this folder ({target.dir}) nor "
                    f"the one its install replaced ({previous}); run rollback from {installed}"
                )
            switch = (target.dir, previous)
    elif installing and installed is not None and not same_folder(installed, target.dir):
        check_upgrade(config, target, installed, items)
        switch = (installed, target.dir)
    elif not installing and installed is not None and not same_folder(installed, target.dir):
        # Remove takes out what is installed, whichever version's folder that is.
        log(1, f"note: IIS serves {target.name} from {installed}; removing that")
        params, target = for_folder(params, target, installed)
        items = plan(params, target, config, options)
    if switch is not None:
        old_params, old_target = for_folder(params, target, switch[0])
        new_params, new_target = for_folder(params, target, switch[1])
        old_items = plan(old_params, old_target, config, options)
        new_items = plan(new_params, new_target, config, options)
        changes = switch_items(config, old_items, new_items)
        items = new_items
    elif not rollback:
        sequence = items if installing else list(reversed(items))
        for item in sequence:
            if installing:
                section_missing = config.lookup(item) is None and _section_missing(config, item)
                try:
                    change = config.ensure(item)
                except _iisconfig.ConfigError as e:
                    raise ConfigurationError(str(e)) from None
            else:
                section_missing = False
                change = "removed" if config.discard(item) else None
            if change:
                changes.append((item, change, section_missing))
    for item, change, _ in changes:
        what = item.location or item.section.rsplit("/", 1)[-1]
        log(2, f"{change} {item.what} {_item_literal(item.element, item.key or None)} in {what}")
    if installing:
        for level, line in filter_neighbours(config, items, target):
            log(level, line)
    commands = [c for item, change, missing in changes for c in appcmd_commands(item, change, missing)]
    has_pool = any(item.what == "application pool" for item in items)
    # A rollback goes back to a folder that already has its grants.
    acls = _acl_commands(target, installing, options) if has_pool and not rollback else []
    recycle = [["recycle", "apppool", f"/apppool.name:{target.pool}"]] if switch is not None and has_pool else []

    if dry:
        if not changes:
            print(f"no change: {path} already has {'everything' if installing else 'nothing'} this installs")
        elif config_path is not None and not show_appcmd:
            diff = difflib.unified_diff(
                before.splitlines(), config.text.splitlines(), path, path + " (planned)", lineterm=""
            )
            for line in diff:
                print(line)
        else:
            for command in commands:
                print(command_line(["appcmd"] + command))
        for acl in acls:
            print(command_line(acl))
        for command in recycle:
            print(command_line(["appcmd"] + command))
        return

    if not changes:
        log(1, f"IIS configuration already {'up to date' if installing else 'clean'} ({path})")
    elif config_path is not None or switch is not None:
        # appcmd would make a switch in several commits, each of which IIS applies on its
        # own (a handler naming a DLL that no restriction allows yet): one write instead.
        write_config(path, config.data(), read=config.original)
        log(1, f"updated {path}: {_summary(changes)}")
    else:
        _run_appcmd(appcmd, commands, target)
        log(1, f"updated IIS: {_summary(changes)}")
    if installing and has_pool and not rollback:
        make_writable_dirs(target, options)
    if switch is not None and not rollback:
        write_previous(target, switch[0])
    elif installing and not rollback and installed is None:
        # A fresh install replaced nothing: a record left by an earlier upgrade is stale.
        try:
            os.remove(_previous_path(target))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise InstallationError(f"cannot delete {_previous_path(target)}: {e.strerror}") from None
    later = acls + [[appcmd] + command for command in recycle]
    if later and config_path is not None:
        log(1, "note: --config edits a file only; on the server run:")
        for command in acls + [["appcmd"] + command for command in recycle]:
            log(1, "  " + command_line(command))
    else:
        for acl in acls:
            _run(acl, "setting file permissions")
        for command in recycle:
            _run([appcmd] + command, "recycling the application pool")
    if switch is not None:
        loader = ntpath.basename(target.loader)
        event_source(target, options, add=ntpath.join(switch[1], loader), drop=ntpath.join(switch[0], loader))
        log(1, f"{target.name} now runs from {switch[1]} (before: {switch[0]})")
    elif installing and not rollback:
        event_source(target, options, add=target.loader)
    elif not installing:
        event_source(target, options, drop=target.loader)


# The Event Log source ------------------------------------------------------------------
#
# The stubs report errors under one source with event ids whose texts are in a message
# table in every loader. The source's key lists the loaders of the installed apps as
# values of their own (so that two installers never rewrite one list at once);
# EventMessageFile names one of them, and the key goes with the last of them.

EVENT_SOURCE = "isapi-freeze"
EVENT_SOURCE_KEY = "SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\" + EVENT_SOURCE
# EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE
EVENT_TYPES_SUPPORTED = 7
_USER_PREFIX = "isapi-freeze app: "


def event_source(target, options, add=None, drop=None):
    """Registers ``add`` (a loader path) as a user of the event source and unregisters
    ``drop``; only on the machine that runs the app (not for --physical-path)."""
    if getattr(options, "physical_path", None):
        log(2, f"note: register the Event Log source {EVENT_SOURCE} on the server (install there)")
        return
    try:
        import winreg
    except ImportError:
        return
    try:
        key = winreg.CreateKeyEx(winreg.HKEY_LOCAL_MACHINE, EVENT_SOURCE_KEY, 0, winreg.KEY_ALL_ACCESS)
        with key:
            if drop:
                try:
                    winreg.DeleteValue(key, _USER_PREFIX + drop)
                except FileNotFoundError:
                    pass
            if add:
                winreg.SetValueEx(key, _USER_PREFIX + add, 0, winreg.REG_SZ, target.name)
            users = []
            index = 0
            while True:
                try:
                    name, _, _ = winreg.EnumValue(key, index)
                except OSError:
                    break
                if name.startswith(_USER_PREFIX):
                    users.append(name[len(_USER_PREFIX) :])
                index += 1
            if users:
                winreg.SetValueEx(key, "EventMessageFile", 0, winreg.REG_EXPAND_SZ, add or sorted(users)[0])
                winreg.SetValueEx(key, "TypesSupported", 0, winreg.REG_DWORD, EVENT_TYPES_SUPPORTED)
        if not users:
            winreg.DeleteKey(winreg.HKEY_LOCAL_MACHINE, EVENT_SOURCE_KEY)
            log(2, f"unregistered the Event Log source {EVENT_SOURCE}")
        else:
            log(2, f"registered the Event Log source {EVENT_SOURCE} (messages: {add or sorted(users)[0]})")
    except OSError as e:
        # IIS already serves the change; the events still arrive, only without their texts.
        log(1, f"note: cannot register the Event Log source {EVENT_SOURCE} (HKLM\\{EVENT_SOURCE_KEY}): {e.strerror}")


# Upgrades side by side --------------------------------------------------------------
#
# A new version goes into a folder of its own: the running worker keeps the old one's
# DLLs loaded, so they cannot be overwritten. Install switches every entry from the old
# folder to the new one and records the old folder in the new one, for rollback and for
# remove --previous.

PREVIOUS_RECORD = "previous-install.json"


def same_folder(a, b):
    return ntpath.normcase(ntpath.normpath(a)) == ntpath.normcase(ntpath.normpath(b))


def _inside(inner, outer):
    outer = ntpath.normcase(ntpath.normpath(outer)).rstrip("\\") + "\\"
    return ntpath.normcase(ntpath.normpath(inner)).startswith(outer)


def installed_folder(items, target, config):
    """The folder IIS serves this app from (found by its application pool at its
    application, or for a filter alone by the filter and its restriction entry), or None
    if it is not installed."""
    for item in items:
        if item.what != "application":
            continue
        existing = config.lookup(item)
        if existing is not None and existing.attrs.get("applicationPool") == target.pool:
            root = existing.find("virtualDirectory", {"path": "/"})
            if root is not None and root.attrs.get("physicalPath"):
                return root.attrs["physicalPath"]
    restrictions = config.node(
        ("system.webServer", {}), ("security", {}), ("isapiCgiRestriction", {})
    )
    for item in items:
        if item.what != "ISAPI filter":
            continue
        existing = config.lookup(item)
        if existing is None or restrictions is None:
            continue
        module = existing.attrs.get("path", "")
        entry = restrictions.find("add", {"path": module})
        if entry is not None and entry.attrs.get("description") == f"{target.name} (isapi-freeze)":
            return ntpath.dirname(module)
    return None


def check_upgrade(config, target, installed, items):
    """Refuses an upgrade into a folder that cannot hold a version of its own: one inside
    the installed version's folder (or holding it), or one another application serves."""
    if _inside(target.dir, installed) or _inside(installed, target.dir):
        raise ConfigurationError(
            f"cannot upgrade {target.name} from {installed} to {target.dir}: one folder is inside the other. "
            "Put each version in a folder of its own beside the installed one (e.g. C:\\apps\\"
            f"{target.name}-2): IIS keeps the installed version's DLLs loaded until the pool recycles"
        )
    ours = {(getattr(item, "site", ""), item.element.attrs.get("path")) for item in items if item.what == "application"}
    sites = config.node(("system.applicationHost", {}), ("sites", {}))
    for site in sites.children if sites is not None else []:
        for application in site.children:
            if application.tag != "application" or not _serves(application, target.dir):
                continue
            name = site.attrs.get("name", "")
            if (name, application.attrs.get("path")) in ours:
                continue
            raise ConfigurationError(
                f"cannot upgrade {target.name} to {target.dir}: that folder is what application "
                f"{name}{application.attrs.get('path')} (application pool "
                f"{application.attrs.get('applicationPool', 'the default')!r}) serves. Copy the new version "
                "into a folder of its own"
            )


def for_folder(params, target, folder):
    """The parameters and target of this app installed from ``folder``: every module path
    naming this output's loader names that folder's instead."""
    moved = copy.copy(target)
    moved.relocate(folder)
    params = copy.deepcopy(params)
    for f in params.Filters:
        if f.Path and same_folder(f.Path, target.loader):
            f.Path = moved.loader
    for vd in params.VirtualDirs:
        if vd.Path and same_folder(vd.Path, target.dir):
            vd.Path = moved.dir
        for sm in vd.ScriptMaps:
            if sm.Module and same_folder(sm.Module, target.loader):
                sm.Module = moved.loader
    return params, moved


def switch_items(config, old_items, new_items):
    """Switches each entry of ``old_items`` to its counterpart in ``new_items`` (the same
    plan for another folder), in place, so that switching back gives the text back byte
    for byte. The changes, as apply lists them."""
    changes = []
    for old, new in zip(old_items, new_items):
        if old.key == new.key:
            try:
                change = config.ensure(new)
            except _iisconfig.ConfigError as e:
                raise ConfigurationError(str(e)) from None
            if change:
                changes.append((new, change, False))
        elif config.lookup(new) is None and config.replace(old, new):
            # appcmd has no rename: take the old entry out, put the new one in.
            changes.append((old, "removed", False))
            changes.append((new, "added", False))
        else:
            if config.ensure(new):
                changes.append((new, "added", False))
            if config.discard(old):
                changes.append((old, "removed", False))
    return changes


def _previous_path(target):
    return os.path.join(target.local_dir, PREVIOUS_RECORD)


def write_previous(target, folder):
    path = _previous_path(target)
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"previous": folder}, f)
    except OSError as e:
        raise InstallationError(
            f"IIS now serves {target.dir}, but {path} (the record of the previous version, {folder}) cannot be "
            f"written: {e.strerror}; rollback and remove --previous will not know it"
        ) from None


def read_previous(target):
    """The folder this version's install replaced."""
    path = _previous_path(target)
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())["previous"]
    except FileNotFoundError:
        raise ConfigurationError(
            f"{target.dir} has no {PREVIOUS_RECORD}: its install did not replace an older version, so there is "
            "no previous version to go back to"
        ) from None
    except OSError as e:
        raise ConfigurationError(f"cannot read {path}: {e.strerror}") from None
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(f"{path} is damaged; nothing was changed") from None


def remove_previous(params, target, options):
    """Deletes the folder this version's install replaced, once IIS no longer serves it."""
    dry = getattr(options, "dry_run", False)
    previous = read_previous(target)
    path = getattr(options, "config", None) or live_config_path()
    config = read_config(path)
    installed = installed_folder(plan(params, target, config, options), target, config)
    if installed is not None and same_folder(installed, previous):
        raise ConfigurationError(
            f"IIS serves {target.name} from {previous} again (after a rollback): it is not removed. Install "
            f"this version again first ({target.name}.exe install)"
        )
    local = previous if os.path.isdir(previous) else None
    if dry:
        print(f"would delete {previous}" if local else f"{previous} is not on this machine: nothing to delete")
        return
    if local:
        try:
            shutil.rmtree(local)
        except OSError as e:
            raise InstallationError(
                f"cannot delete {previous}: {e.strerror} ({e.filename}); an old worker process may still have "
                "it open: try again after it exits"
            ) from None
        log(1, f"deleted {previous}")
    else:
        log(1, f"{previous} is not on this machine: delete it on the server")
    os.remove(_previous_path(target))


def _section_missing(config, item):
    found, missing = config._walk(item)
    depth = (1 if item.location is not None else 0) + len(item.section.split("/"))
    return len(found) - 1 < depth


def _summary(changes):
    counts = {}
    for item, change, _ in changes:
        counts[(change, item.what)] = counts.get((change, item.what), 0) + 1
    return ", ".join(f"{change} {n} {what}{'s' if n > 1 else ''}" for (change, what), n in counts.items())


def _run(argv, why):
    log(2, "running: " + command_line(argv))
    try:
        result = subprocess.run(argv, capture_output=True, text=True)
    except OSError as e:
        raise InstallationError(f"{why}: cannot run {argv[0]}: {e.strerror}") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise InstallationError(f"{why}: `{command_line(argv)}` failed ({result.returncode}): {output}")
    return result.stdout


def _run_appcmd(appcmd, commands, target):
    """Runs the appcmd commands; after a failure, restores IIS's configuration as it was."""
    backup = f"isapi-freeze-{target.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    _run([appcmd, "add", "backup", backup], "backing up IIS's configuration")
    for command in commands:
        try:
            _run([appcmd] + command, "changing IIS's configuration")
        except InstallationError as e:
            restore = subprocess.run([appcmd, "restore", "backup", backup], capture_output=True, text=True)
            state = "restored" if restore.returncode == 0 else f"NOT restored (restore backup {backup} by hand)"
            raise InstallationError(f"{e}; IIS's configuration was {state}") from None


# pywin32's entry points -----------------------------------------------------------------


def _target_for(conf_module_name):
    if getattr(sys, "frozen", None):
        loader = GetLoaderModuleName(sys.executable)
    else:
        loader = GetLoaderModuleName(conf_module_name)
    return Target(loader)


def Install(params, options, target=None):
    target = target or _target_for(sys.argv[0])
    _call_hook(params, "PreInstall", options)
    for item in list(params.VirtualDirs) + list(params.Filters):
        _call_hook(item, "PreInstall", options)
    apply(params, target, options, installing=True)
    if getattr(options, "dry_run", False):
        return
    for vd in params.VirtualDirs:
        _call_hook(vd, "PostInstall", options, vd.Name)
        log(1, f"Configured Virtual Directory: {vd.Name}")
    for f in params.Filters:
        _call_hook(f, "PostInstall", options, f.Name)
        log(1, f"Configured Filter: {f.Name}")
    _call_hook(params, "PostInstall", options)


def Uninstall(params, options, target=None):
    target = target or _target_for(sys.argv[0])
    _call_hook(params, "PreRemove", options)
    for item in list(params.VirtualDirs) + list(params.Filters):
        _call_hook(item, "PreRemove", options)
    apply(params, target, options, installing=False)
    if getattr(options, "dry_run", False):
        return
    for vd in params.VirtualDirs:
        _call_hook(vd, "PostRemove", options)
        log(1, f"Deleted Virtual Directory: {vd.Name}")
    for f in params.Filters:
        _call_hook(f, "PostRemove", options)
        log(1, f"Deleted Filter: {f.Name}")
    _call_hook(params, "PostRemove", options)


def InstallModule(conf_module_name, params, options, log=lambda *args: None):
    "Install the extension"
    target = _target_for(conf_module_name)
    if not os.path.isfile(target.loader):
        raise ConfigurationError(f"{target.loader} does not exist: run the installer from the folder isapi-freeze wrote")
    if getattr(sys, "frozen", None):
        verify_manifest(target.dir)
    target.read_bitness()
    if target.bits == 64 and os.environ.get("PROCESSOR_ARCHITECTURE", "AMD64").upper() == "X86" and not os.environ.get(
        "PROCESSOR_ARCHITEW6432"
    ):
        raise ConfigurationError(f"{target.loader} is a 64-bit DLL and this Windows is 32-bit: freeze with a 32-bit Python")
    if getattr(options, "physical_path", None):
        target.relocate(options.physical_path)
    _patch_params_module(params, target.loader)
    Install(params, options, target)
    if not getattr(options, "dry_run", False):
        log(1, "Installation complete.")


def UninstallModule(conf_module_name, params, options, log=lambda *args: None):
    "Remove the extension"
    target = _target_for(conf_module_name)
    target.bits = 64
    if os.path.isfile(target.loader):
        try:
            target.read_bitness()
        except ConfigurationError:
            pass
    if getattr(options, "physical_path", None):
        target.relocate(options.physical_path)
    _patch_params_module(params, target.loader)
    if getattr(options, "previous", False):
        remove_previous(params, target, options)
        return
    Uninstall(params, options, target)
    if not getattr(options, "dry_run", False):
        log(1, "Uninstallation complete.")


def RollbackModule(conf_module_name, params, options, log=lambda *args: None):
    "Switch IIS back to the version this one replaced"
    target = _target_for(conf_module_name)
    target.read_bitness()
    if getattr(options, "physical_path", None):
        target.relocate(options.physical_path)
    _patch_params_module(params, target.loader)
    apply(params, target, options, installing=True, rollback=True)


standard_arguments = {
    "install": InstallModule,
    "remove": UninstallModule,
    "rollback": RollbackModule,
}


def build_usage(handler_map):
    lines = ["%prog [options] [" + "|".join(handler_map) + "]", "commands:"]
    for arg, handler in handler_map.items():
        lines.append(" %-10s: %s" % (arg, handler.__doc__))
    return "\n".join(lines)


def MergeStandardOptions(options, params):
    """Merges command-line options into the parameters (nothing to merge by default)."""


def _call_handler(handler, conf_module_name, params, options, arg):
    try:
        positional = [
            p
            for p in inspect.signature(handler).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        positional = None
    if positional is not None and len(positional) == 3:
        # pywin32's samples write custom handlers as handler(options, log, arg).
        return handler(options, log, arg)
    return handler(conf_module_name, params, options, log)


def HandleCommandLine(
    params,
    argv=None,
    conf_module_name=None,
    default_arg="install",
    opt_parser=None,
    custom_arg_handlers={},
):
    """Installs or removes the ISAPI extension or filter described by ``params``, as the
    command line asks; exits non-zero on any failure."""
    global verbose, _handled
    from optparse import OptionParser

    _handled = True
    argv = argv or sys.argv
    if not conf_module_name:
        conf_module_name = sys.argv[0]
    parser = opt_parser if opt_parser is not None else OptionParser(usage="")
    all_handlers = standard_arguments.copy()
    all_handlers.update(custom_arg_handlers)
    if not parser.get_usage():
        parser.set_usage(build_usage(all_handlers))
    all_handlers.setdefault("uninstall", all_handlers["remove"])
    parser.add_option(
        "-q", "--quiet", action="store_false", dest="verbose", default=True, help="don't print status messages"
    )
    parser.add_option(
        "-v", "--verbosity", action="count", dest="verbose", default=1, help="print more (repeat for more)"
    )
    parser.add_option("", "--server", action="store", help="the IIS site to install to (name or id)")
    parser.add_option(
        "",
        "--config",
        action="store",
        metavar="PATH",
        help="edit this applicationHost.config instead of the live IIS (e.g. an offline image)",
    )
    parser.add_option(
        "", "--dry-run", action="store_true", default=False, help="print the planned change; change nothing"
    )
    parser.add_option(
        "",
        "--physical-path",
        action="store",
        metavar="PATH",
        help="where the output directory is on the server, if not here: with --config for a farm's shared "
        "configuration, the folder's path on every node (e.g. D:\\apps\\NAME)",
    )
    parser.add_option(
        "",
        "--processes",
        action="store",
        metavar="N",
        help="worker processes for the application pool (processModel.maxProcesses, a web garden): "
        "each runs its own Python interpreter",
    )
    parser.add_option(
        "",
        "--max-body",
        action="store",
        metavar="SIZE",
        help="the largest request body IIS lets through to the app (requestLimits maxAllowedContentLength; "
        "IIS's default 30000000 bytes), in bytes or with K, M or G",
    )
    parser.add_option(
        "",
        "--max-query",
        action="store",
        metavar="LEN",
        help="the longest query string IIS lets through (requestLimits maxQueryString; IIS's default 2048)",
    )
    parser.add_option(
        "",
        "--allow-double-escaping",
        action="store_true",
        default=False,
        help="let URLs with '+' or an escaped '%' in the path through (requestFiltering allowDoubleEscaping)",
    )
    parser.add_option(
        "",
        "--data-dir",
        action="store",
        metavar="NAME",
        help="a folder inside the output directory that the app writes (SQLite databases, uploads): "
        "the application pool gets modify rights on it, as on logs\\",
    )
    parser.add_option(
        "",
        "--previous",
        action="store_true",
        default=False,
        help="with remove: delete the folder of the version this one's install replaced (kept for rollback)",
    )
    parser.add_option(
        "",
        "--print-appcmd",
        action="store_true",
        default=False,
        help="with --dry-run: print the appcmd.exe lines even with --config",
    )
    options, args = parser.parse_args(argv[1:])
    MergeStandardOptions(options, params)
    verbose = int(options.verbose)
    if not args:
        args = [default_arg]
    arg = None
    try:
        for arg in args:
            if arg not in all_handlers:
                parser.error(f"Invalid arg '{arg}'")
            _call_handler(all_handlers[arg], conf_module_name, params, options, arg)
    except InstallationError as details:
        if options.verbose > 1:
            traceback.print_exc()
        sys.stderr.write(f"{details.__class__.__name__}: {details}\n")
        sys.exit(1)


def default_parameters(module, site, vpath):
    """The parameters of a script with no install code of its own: the extension under
    ``vpath`` of ``site`` with every request and verb mapped to it, and its filter on the
    site if it has one."""
    params = ISAPIParameters(ServerName=site, VirtualDirs=[], Filters=[])
    name = module.__name__
    if hasattr(module, "__ExtensionFactory__"):
        params.VirtualDirs.append(
            VirtualDirParameters(
                Name=vpath,
                Description=name,
                ScriptMaps=[ScriptMapParams(Extension="*", Flags=0)],
            )
        )
    if hasattr(module, "__FilterFactory__"):
        params.Filters.append(FilterParameters(Name=name, Description=name))
    return params
