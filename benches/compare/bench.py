"""`make bench`: isapi-freeze side by side with pywin32's ISAPI loader, a native ISAPI
extension and PyInstaller, measured on this machine in one run; writes BENCHMARKS.md.

Every ISAPI peer runs under the same Wine, the same in-process driver
(benches/driver) and the same isapi-host. Repetitions are interleaved across peers (and
CPython versions) so that the machine's noise falls on all of them alike; each table gives
medians, and every comparison is a ratio of medians from this run. The soak
(benches/soak.rs) is `make soak`: it writes its own section, which this script keeps.

`--only hello,django` (`make bench ONLY=hello,django`) runs those apps only (hello, pool,
wsgi, flask, django, fastapi, asgi) and writes target/bench/BENCHMARKS-only.md.
Environment: BENCH_REPS (runs per measurement on the default CPython, default 3),
BENCH_REPS_OTHER (on the other versions, default 2), BENCH_FREEZE_REPS (default 2),
BENCH_SECONDS (per throughput run, default 1), BENCH_MEMORY_REQUESTS (default 10000),
BENCH_PYTHONS (e.g. `3.11`, default every tested version), BENCH_OUT.
"""

import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "target"
STUBS = TARGET / "x86_64-pc-windows-gnu/release"
CLI = TARGET / "release/isapi-freeze"
WORK = TARGET / "bench"
VENV = WORK / "venv"
WINE = os.environ.get("WINE", "/usr/lib/wine/wine64")
REPS = int(os.environ.get("BENCH_REPS", "3"))
REPS_OTHER = int(os.environ.get("BENCH_REPS_OTHER", "2"))
FREEZE_REPS = int(os.environ.get("BENCH_FREEZE_REPS", "2"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "1"))
MEMORY_REQUESTS = int(os.environ.get("BENCH_MEMORY_REQUESTS", "10000"))
BUDGET_MINUTES = 15
# The Linux side of PyInstaller's builds: the same packages as the Windows sites.
PYINSTALLER = "pyinstaller==6.16.0"
LINUX_PACKAGES = [PYINSTALLER, "flask==3.1.3", "django==5.2.19", "tzdata==2025.2", "fastapi==0.165.0",
                  "a2wsgi==1.10.10"]

ENV = dict(os.environ, WINEPREFIX=str(TARGET / "wine"), WINEDEBUG="-all")
COMMANDS = []  # every command line the report shows, in order of first use


class Python:
    """One supported CPython (stub/format/pythons.txt): its embeddable runtime and sites."""

    def __init__(self, version, default, requirement):
        self.version = version
        self.default = default
        self.requirement = requirement
        self.tag = "cp" + version.replace(".", "")
        self.stem = "python" + self.tag[2:]
        self.home = TARGET / "python" / self.tag
        self.sites = TARGET / "site" / self.tag


def supported_pythons():
    """The default and tested versions of stub/format/pythons.txt, the default first."""
    wanted = os.environ.get("BENCH_PYTHONS", "").replace(",", " ").split()
    found = []
    for line in (ROOT / "stub/format/pythons.txt").read_text().splitlines():
        fields = line.split()
        if fields and not line.startswith("#") and fields[1] in ("default", "tested"):
            if not wanted or fields[0] in wanted or fields[1] == "default":
                found.append(Python(fields[0], fields[1] == "default", fields[2]))
    found.sort(key=lambda py: not py.default)
    if not found or not found[0].default:
        raise SystemExit("stub/format/pythons.txt names no default version")
    return found


PYTHONS = supported_pythons()
DEFAULT = PYTHONS[0]


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def note(command):
    text = " ".join(str(c) for c in command)
    text = text.replace(str(ROOT) + "/", "").replace(str(ROOT), ".")
    if text not in COMMANDS:
        COMMANDS.append(text)


def run(command, **kwargs):
    note(command)
    kwargs.setdefault("env", ENV)
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"bench: {command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def win_path(path):
    return "Z:" + str(path).replace("/", "\\")


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


# ---------------------------------------------------------------------------------------
# The applications and the peers that serve them


class App:
    def __init__(self, key, title, script, path, site=None, data=(), pywin32=True, every_python=False,
                 first_path=None, module_paths=(), in_process_only=False):
        self.key = key
        self.title = title
        self.script = script
        self.path = path  # the request path measured
        self.site = site  # the folder of target/site/cp3XY it needs (isapi-freeze --path, pywin32's sys.path)
        self.data = list(data)  # (source, name) copied beside pywin32's script; PyInstaller --add-data
        self.pywin32 = pywin32  # False: compared with another app of ours (ASGI_PAIRS), not pywin32
        self.every_python = every_python  # measured in process on every supported CPython
        self.first_path = first_path  # asked once before the runs (e.g. a row for Django to read)
        self.module_paths = list(module_paths)  # modules beside the script that pywin32 needs copied
        self.in_process_only = in_process_only  # a diagnostic row: no HTTP, memory or size runs

    def extra(self, py):
        return ["--path", py.sites / self.site] if self.site else []


FLASK_DIR = ROOT / "examples/flask_app"
DJANGO_DIR = ROOT / "examples/django_app"
APPS_DIR = ROOT / "benches/compare/apps"
APPS = [
    App("hello", "hello, SimpleExtension", ROOT / "examples/hello/hello.py", "/hello", every_python=True),
    # The same bytes from constants: the loaders' own cost per request, against the native one.
    App("hello_fixed", "hello's bytes from constants, SimpleExtension", APPS_DIR / "hello_fixed.py", "/hello",
        in_process_only=True),
    App("pool", "hello, ThreadPoolExtension", APPS_DIR / "hello_pool.py", "/hello", every_python=True),
    App("wsgi", "hello through isapi.wsgi", ROOT / "examples/wsgi/wsgi_hello.py", "/", every_python=True),
    # The app factory's package ships its templates and static files as package data.
    App("flask", "Flask example (template page)", FLASK_DIR / "app.py", "/", site="flask",
        data=[(FLASK_DIR / "hello_site", "hello_site")], every_python=True),
    # The notes page: Django's template engine over a SQLite read (one row, added first).
    App("django", "Django example (template page, SQLite read)", DJANGO_DIR / "django_app.py", "/notes/",
        site="django", data=[(DJANGO_DIR / "djsite", "djsite")], first_path="/notes/add?text=benchmark"),
    # isapi.asgi against what ran FastAPI on IIS before it; pywin32 with a2wsgi for reference.
    App("fastapi_asgi", "FastAPI hello JSON through isapi.asgi", APPS_DIR / "fastapi_asgi.py", "/hello",
        site="fastapi", pywin32=False, module_paths=[APPS_DIR / "fastapi_hello.py"]),
    App("fastapi_a2wsgi", "FastAPI hello JSON through a2wsgi on isapi.wsgi", APPS_DIR / "fastapi_a2wsgi.py",
        "/hello", site="fastapi", module_paths=[APPS_DIR / "fastapi_hello.py"]),
    App("asgi", "hello through isapi.asgi", APPS_DIR / "asgi_hello.py", "/", pywin32=False),
]
APP = {app.key: app for app in APPS}
# What `--only NAME` runs: an app, and what its comparisons need.
GROUPS = {"hello": ["hello", "hello_fixed"], "pool": ["pool"], "wsgi": ["wsgi"], "flask": ["flask"], "django": ["django"],
          "fastapi": ["fastapi_asgi", "fastapi_a2wsgi"], "asgi": ["asgi", "wsgi"]}
# (title, ours, the app it is set against, the least ratio the issue asks for and where).
ASGI_PAIRS = [
    ("FastAPI hello JSON: isapi.asgi / a2wsgi on isapi.wsgi", "fastapi_asgi", "fastapi_a2wsgi", 2.0, ("in process",)),
    ("plain hello: isapi.asgi / isapi.wsgi", "asgi", "wsgi", 0.5, ("in process", "HTTP")),
]
# The apps whose answer the native extension sends too: its column is shown in their rows.
NATIVE_TWINS = ("hello", "hello_fixed")
FROZEN_TIMED = ["hello", "flask", "django"]  # freeze time against PyInstaller's (the targets' apps)
# Django's PyInstaller build takes about a minute on a loaded 2-core machine: one run.
FREEZE_REPS_OF = {"django": 1}


class Peer:
    """One DLL to drive: the folder it runs in (also the current folder, where Windows finds
    the DLLs a loader imports statically), the request path and the CPython it runs."""

    def __init__(self, loader, app, dll, py):
        self.loader = loader
        self.app = app
        self.dll = dll
        self.py = py
        self.path = app.path
        self.name = key(loader, app.key, py)
        self.reps = REPS if py.default else REPS_OTHER


def key(loader, app_key, py):
    return "native/hello" if loader == "native" else f"{loader}/{app_key}/{py.version}"


def freeze(app, py, dist, cache):
    command = [CLI, app.script, "--python", py.home, "--dist-dir", dist, *app.extra(py)]
    env = dict(ENV, ISAPI_FREEZE_CACHE=str(cache), ISAPI_FREEZE_STUBS=str(TARGET / "stubs"))
    began = time.perf_counter()
    run(command, env=env, cwd=ROOT)
    return time.perf_counter() - began


def pywin32_folder(app, py, folder):
    """pywin32's loader as its users deploy it: PyISAPI_loader.dll copied as _NAME.dll beside
    NAME.py, pywin32's own isapi package, pywintypes3XY.dll and the same embeddable CPython;
    the app's packages from .py files on sys.path (python3XY._pth). isapi.wsgi is ours (pywin32
    has none), copied into pywin32's isapi package so both loaders run the same adapter."""
    site = py.sites / "pywin32"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(py.home, folder)
    name = app.script.stem
    shutil.copy(site / "isapi/PyISAPI_loader.dll", folder / f"_{name}.dll")
    shutil.copy(site / f"pywin32_system32/pywintypes{py.tag[2:]}.dll", folder)
    shutil.copy(app.script, folder / app.script.name)
    for module in app.module_paths:
        shutil.copy(module, folder / module.name)
    shutil.copytree(site / "isapi", folder / "isapi", ignore=shutil.ignore_patterns("__pycache__", "doc", "samples", "test"))
    for module in ("wsgi.py", "_errorpage.py"):
        shutil.copy(ROOT / "resources/isapi" / module, folder / "isapi" / module)
    for source, target in app.data:
        shutil.copytree(source, folder / target, ignore=shutil.ignore_patterns("__pycache__"))
    paths = [f"{py.stem}.zip", ".", win_path(site / "win32"), win_path(site / "win32/lib")]
    if app.site:
        paths.append(win_path(py.sites / app.site))
    (folder / f"{py.stem}._pth").write_text("\n".join(paths) + "\n")
    return folder / f"_{name}.dll"


def tree_size(folder):
    files = [p for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files), len(files)


def setup(apps):
    """Freezes every app for every CPython it is measured on and lays out pywin32's folders;
    returns the peers and the size of each fresh output folder (default CPython)."""
    needed = [(CLI, "make cli"), (STUBS / "isapi-bench-driver.exe", "make bench")]
    for py in PYTHONS:
        needed += [(py.home / f"{py.stem}.dll", "make python"), (py.sites / "pywin32/.done", "make sites")]
        needed += [(py.sites / app.site / ".done", "make sites") for app in apps if app.site]
    for path, how in needed:
        if not path.exists():
            raise SystemExit(f"bench: missing {path} ({how})")
    WORK.mkdir(parents=True, exist_ok=True)
    # Wine's services start with the first program of a session and keep its output pipes
    # open; a throwaway first program keeps them away from the measured ones.
    subprocess.run([WINE, "cmd.exe", "/c", "exit"], env=ENV, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    marker = VENV / "requirements.txt"
    if not marker.exists() or marker.read_text().split() != LINUX_PACKAGES:
        log(f"installing {' '.join(LINUX_PACKAGES)} into {VENV}")
        if not (VENV / "bin/pip").exists():
            run([sys.executable, "-m", "venv", VENV])
        run([VENV / "bin/pip", "install", "--quiet", "--disable-pip-version-check", *LINUX_PACKAGES])
        marker.write_text("\n".join(LINUX_PACKAGES) + "\n")
    peers, sizes = [], {}
    cache = WORK / "cache"
    for py in PYTHONS:
        for app in apps:
            if not (py.default or app.every_python):
                continue
            log(f"setup: {app.key} on CPython {py.version}")
            dist = WORK / "ours" / py.tag / app.key
            if dist.exists():
                shutil.rmtree(dist)
            freeze(app, py, dist, cache)
            if py.default:
                sizes[app.key] = tree_size(dist)  # before any run writes into it (logs, data)
            peers.append(Peer("isapi-freeze", app, dist / f"_{app.script.stem}.dll", py))
            if app.pywin32:
                dll = pywin32_folder(app, py, WORK / "pywin32" / py.tag / app.key)
                peers.append(Peer("pywin32", app, dll, py))
    if "hello" in (app.key for app in apps):
        peers.append(Peer("native", APP["hello"], STUBS / "native_extension.dll", DEFAULT))
    return peers, sizes


# ---------------------------------------------------------------------------------------
# In process: the driver calls HttpExtensionProc


# Driver runs that printed their figures and then never exited (peer names): under Wine a
# process whose unload leaves threads running (a2wsgi's event loop thread) can hang in its
# exit. The figures came before the unload, so they count; the report says how often.
HUNG_EXITS = []
# Driver runs that exited non-zero without figures (peer name, exit code, stderr's end); each
# is run again once, and the report lists them: a crash is a finding, not noise to hide.
FAILED_RUNS = []


def drive(peer, clients, seconds, warmup=200, path=None, retry=True):
    command = [WINE, STUBS / "isapi-bench-driver.exe", win_path(peer.dll), "--path", path or peer.path,
               "--clients", clients, "--seconds", seconds, "--warmup", warmup]
    note(command)
    process = subprocess.Popen([str(c) for c in command], cwd=peer.dll.parent, env=ENV,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    hung = False
    try:
        out, err = process.communicate(timeout=float(seconds) + 90)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        hung = True
    line = next((line for line in out.splitlines() if line.startswith("{")), None)
    if hung and line is not None:
        HUNG_EXITS.append(peer.name)
    elif line is None or process.returncode != 0:
        if retry:
            FAILED_RUNS.append((peer.name, clients, process.returncode, (out + err).strip()[-300:]))
            log(f"{peer.name}: the driver failed ({process.returncode}), running it again")
            return drive(peer, clients, seconds, warmup, path, retry=False)
        raise SystemExit(f"bench: {command} failed ({process.returncode}):\n{out}\n{err}")
    return json.loads(line)


def check_response(peer, response):
    head, _, body = response.partition("\r\n\r\n")
    if not head.startswith("HTTP/1.1 200"):
        raise SystemExit(f"bench: {peer.name} answered {head!r} {body[:500]!r}")
    return body


def in_process(peers):
    results = {p.name: {"cold": [], "load": [], "version": [], 1: [], 8: []} for p in peers}
    bodies = {}
    for peer in peers:
        # A first run checks the answer (or makes what the measured page reads) and lets
        # pywin32's CPython write its __pycache__.
        first = drive(peer, 1, 0, warmup=0, path=peer.app.first_path)
        check_response(peer, first["first_response"])
    for rep in range(max(p.reps for p in peers)):
        for clients in (1, 8):
            for peer in peers:
                if rep >= peer.reps:
                    continue
                log(f"in process: {peer.name}, {clients} clients, run {rep + 1}/{peer.reps}")
                result = drive(peer, clients, SECONDS)
                bodies.setdefault(peer.name, check_response(peer, result["first_response"]))
                result.pop("first_response")
                results[peer.name][clients].append(result)
                results[peer.name]["cold"].append(result["cold_start_ms"])
                results[peer.name]["load"].append(result.get("load_ms"))
                results[peer.name]["version"].append(result.get("version_ms"))
    return results, bodies


def import_probe(peers):
    """Python's own count and time of the imports an app's script makes, in pywin32's folder
    (the same CPython, the same modules from .py/.pyc files), with that folder's python.exe:
    what the cold start's GetExtensionVersion spends beyond starting Python."""
    probes = {}
    code = ("import sys, time; before = set(sys.modules); began = time.perf_counter(); import {0}; "
            "print(len(set(sys.modules) - before), len(sys.modules), (time.perf_counter() - began) * 1e3)")
    for peer in peers:
        if peer.loader != "pywin32" or not peer.py.default:
            continue
        out = run([WINE, peer.dll.parent / "python.exe", "-c", code.format(peer.app.script.stem)],
                  cwd=peer.dll.parent).stdout.split()
        probes[peer.app.key] = {"modules": int(out[0]), "total_modules": int(out[1]), "import_ms": float(out[2])}
    return probes


STATEMENTS_CODE = r"""
import sys, time
sys.frozen = "dll"
sys.path.insert(0, sys.argv[1])
import hello, hello_fixed

class ECB:
    Method, PathInfo, QueryString, AvailableData = b"GET", b"/hello", b"", b""
    TotalBytes = AvailableBytes = 0
    def SendResponseHeaders(self, status, headers, keep_alive=False):
        pass
    def WriteClient(self, data, flags=0):
        return len(data)

ecb = ECB()
for module in (hello, hello_fixed):
    call = module.__ExtensionFactory__().HttpExtensionProc
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(50000):
            call(ecb)
        best = min(best, (time.perf_counter() - began) / 50000)
    print(best * 1e6)
"""


def statement_cost(peers):
    """What hello's HttpExtensionProc costs per call with no loader at all: python.exe in
    pywin32's folder (the same embeddable CPython), a plain-Python stand-in for the control
    block, best of 5 rounds. The same for hello_fixed: the difference is what hello's own
    statements add to every request, whichever loader runs them."""
    costs = {}
    for peer in peers:
        if peer.loader != "pywin32" or peer.app.key != "hello":
            continue
        out = run([WINE, peer.dll.parent / "python.exe", "-c", STATEMENTS_CODE, win_path(APPS_DIR)],
                  cwd=peer.dll.parent).stdout.split()
        costs[peer.py.version] = {"hello_us": float(out[0]), "fixed_us": float(out[1])}
    return costs


# ---------------------------------------------------------------------------------------
# Over HTTP: isapi-host on loopback, wrk as the load generator; the serving process's memory


class Host:
    def __init__(self, peer):
        command = [WINE, STUBS / "isapi-host.exe", "--control-stdin", "--listen", "127.0.0.1:0", win_path(peer.dll)]
        note(command)
        self.process = subprocess.Popen([str(c) for c in command], cwd=peer.dll.parent, env=ENV,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        for line in self.process.stdout:
            if line.startswith("isapi-host: listening on http://"):
                self.address = line.split("http://", 1)[1].strip().rstrip("/")
                break
        else:
            raise SystemExit(f"bench: isapi-host did not start for {peer.name}")

    def memory(self):
        """VmRSS and VmHWM of the serving process (Wine runs it in the process we started),
        and its resident memory by kind of mapping from /proc/PID/smaps."""
        pid = self.process.pid
        status = Path(f"/proc/{pid}/status").read_text()
        figures = {name: int(re.search(rf"{name}:\s+(\d+) kB", status).group(1)) for name in ("VmRSS", "VmHWM")}
        kinds = {"pe": 0, "so": 0, "anon": 0, "other": 0}
        kind = "anon"
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            fields = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                name = fields[5] if len(fields) > 5 else ""
                lower = name.lower()
                if not name or name.startswith("["):
                    kind = "anon"
                elif lower.endswith((".dll", ".pyd", ".exe")):
                    kind = "pe"
                elif ".so" in lower:
                    kind = "so"
                else:
                    kind = "other"
            elif fields[0] == "Rss:":
                kinds[kind] += int(fields[1])
        figures.update(kinds)
        return figures

    def stop(self):
        try:
            self.process.stdin.close()
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wrk(address, path, clients, seconds):
    threads = min(clients, 2)
    command = ["wrk", "-t", threads, "-c", clients, "-d", f"{seconds:g}s", "--latency", f"http://{address}{path}"]
    out = run(command).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"bench: wrk saw errors:\n{out}")

    def latency(percent):
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50_us": latency(50), "p99_us": latency(99), "requests": requests}


def send_requests(address, path, total, clients=8):
    """Exactly `total` keep-alive GETs over `clients` connections, each answer read whole
    and checked for 200 (wrk cannot stop at a count)."""
    host, port = address.rsplit(":", 1)
    failures = []

    def client(count):
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        for _ in range(count):
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures.append(response.status)
        connection.close()

    threads = [threading.Thread(target=client, args=(total // clients + (i < total % clients),))
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"bench: {len(failures)} of {total} requests to {address}{path} failed: {failures[:5]}")


HTTP_WARMUP = 200


def over_http(peers):
    """The throughput runs, then as many more requests as make MEMORY_REQUESTS (the runs'
    own requests count: the slow apps serve a few hundred a second), then the memory."""
    peers = [p for p in peers if p.py.default and not p.app.in_process_only]
    results = {p.name: {1: [], 8: []} for p in peers}
    hosts = {}
    try:
        for peer in peers:
            log(f"http: starting isapi-host for {peer.name}")
            hosts[peer.name] = Host(peer)
            results[peer.name]["started"] = hosts[peer.name].memory()
            send_requests(hosts[peer.name].address, peer.path, HTTP_WARMUP)
        for rep in range(REPS):
            for clients in (1, 8):
                for peer in peers:
                    log(f"http: {peer.name}, {clients} clients, run {rep + 1}/{REPS}")
                    results[peer.name][clients].append(wrk(hosts[peer.name].address, peer.path, clients, SECONDS))
        for peer in peers:
            done = HTTP_WARMUP + sum(r["requests"] for c in (1, 8) for r in results[peer.name][c])
            if done < MEMORY_REQUESTS:
                log(f"memory: {MEMORY_REQUESTS - done} more requests to {peer.name}")
                send_requests(hosts[peer.name].address, peer.path, MEMORY_REQUESTS - done)
            results[peer.name]["requests"] = max(done, MEMORY_REQUESTS)
            results[peer.name]["after"] = hosts[peer.name].memory()
    finally:
        for host in hosts.values():
            host.stop()
    return results


# ---------------------------------------------------------------------------------------
# Freezing: isapi-freeze against PyInstaller on the same source


def pyinstaller(app, root):
    """PyInstaller --onedir of the same script on Linux, with fresh work, output and config
    folders (it caches there); our isapi package (pure Python) is on its path, as for
    isapi-freeze, and the app's data files (templates, static files) are added."""
    name = app.script.stem
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    command = [VENV / "bin/pyinstaller", "--onedir", "--noconfirm", "--log-level", "ERROR",
               "--distpath", root / "dist", "--workpath", root / "build", "--specpath", root,
               "--paths", ROOT / "resources"]
    for source, target in app.data:
        for sub in ("templates", "static"):
            if (source / sub).is_dir():
                command += ["--add-data", f"{source / sub}:{target}/{sub}"]
    command.append(app.script)
    env = dict(ENV, PYINSTALLER_CONFIG_DIR=str(root / "config"))
    began = time.perf_counter()
    run(command, env=env, cwd=root)
    return time.perf_counter() - began, root / "dist" / name


def freezing(apps, sizes):
    """Freeze times (cold cache, unchanged rebuild) of the targets' apps against a clean
    PyInstaller build, and every app's output size and file count against PyInstaller's."""
    results = {app.key: {"isapi-freeze": {"cold": [], "rebuild": []}, "pyinstaller": {"cold": []}}
               for app in apps}
    timed = [app for app in apps if app.key in FROZEN_TIMED]
    for rep in range(FREEZE_REPS):
        for app in timed:
            if rep >= FREEZE_REPS_OF.get(app.key, FREEZE_REPS):
                continue
            log(f"freeze: {app.key}, run {rep + 1}/{FREEZE_REPS}")
            ours, theirs = results[app.key]["isapi-freeze"], results[app.key]["pyinstaller"]
            cache = Path(tempfile.mkdtemp(dir=WORK, prefix="cache-"))
            dist = WORK / "freeze" / app.key / "dist"
            if dist.exists():
                shutil.rmtree(dist)
            ours["cold"].append(freeze(app, DEFAULT, dist, cache))
            ours["rebuild"].append(freeze(app, DEFAULT, dist, cache))
            ours["rebuild"].append(freeze(app, DEFAULT, dist, cache))
            shutil.rmtree(cache)
            seconds, out = pyinstaller(app, WORK / "pyinstaller" / app.key)
            theirs["cold"].append(seconds)
    for app in (a for a in apps if not a.in_process_only):
        ours, theirs = results[app.key]["isapi-freeze"], results[app.key]["pyinstaller"]
        ours["size"], ours["files"] = sizes[app.key]
        out = WORK / "pyinstaller" / app.key / "dist" / app.script.stem
        if app not in timed:
            log(f"size: PyInstaller {app.key}")
            _, out = pyinstaller(app, WORK / "pyinstaller" / app.key)
        theirs["size"], theirs["files"] = tree_size(out)
    return results


# ---------------------------------------------------------------------------------------
# The report


def version(command, pattern=r"(.*)"):
    try:
        out = subprocess.run(command, capture_output=True, text=True, env=ENV)
        text = (out.stdout + out.stderr).strip()
        match = re.search(pattern, text)
        return match.group(1).strip() if match else text.splitlines()[0]
    except OSError:
        return "?"


def machine():
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024
    pythons = ", ".join(f"{py.version} ({py.requirement})" for py in PYTHONS)
    pywin32 = (DEFAULT.sites / "pywin32/pywin32.version.txt").read_text().strip()
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} logical CPUs"),
        ("Memory", f"{memory} MiB"),
        ("System", f"{platform.platform()}"),
        ("Wine", version([WINE, "--version"])),
        ("rustc", version(["rustc", "--version"])),
        ("Windows CPython", f"embeddable {pythons} from PyPI, the same for every Python peer of a version"),
        ("pywin32", f"{pywin32} ({', '.join(py.tag for py in PYTHONS)} win_amd64 wheels)"),
        ("PyInstaller", version([VENV / "bin/pyinstaller", "--version"]) + f" on Linux CPython {platform.python_version()}"),
        ("wrk", version(["wrk", "--version"], r"(wrk \S+)")),
    ]


def ratio(a, b):
    return a / b if b else float("nan")


def fmt(value, digits=0):
    return f"{value:,.{digits}f}"


def stat(results, name, clients, what):
    return median([r[what] for r in results.get(name, {}).get(clients, [])])


WALL = "{{WALL_MINUTES}}"  # replaced once the report is written


class Report:
    def __init__(self, apps, peers, inproc, bodies, probes, http, frozen, costs):
        self.apps, self.peers, self.inproc, self.bodies, self.costs = apps, peers, inproc, bodies, costs
        self.probes, self.http, self.frozen = probes, http, frozen
        self.names = {p.name for p in peers}
        self.rows = ["| target | measured | met |", "|---|---|---|"]

    def target(self, text, value, ok):
        self.rows.append(f"| {text} | {value} | {'yes' if ok else '**no**'} |")

    def pythons_of(self, app):
        return [py for py in PYTHONS if key("isapi-freeze", app.key, py) in self.names]

    def throughput(self, title, results, note):
        out = ["", f"## {title}", "",
               "| app | CPython | clients | isapi-freeze req/s | pywin32 req/s | **ratio** | native req/s | "
               "isapi-freeze p50 / p99 (µs) | pywin32 p50 / p99 (µs) |", "|---|---|---|---|---|---|---|---|---|"]
        for app in (a for a in self.apps if a.pywin32):
            for py in self.pythons_of(app):
                ours_name, theirs_name = key("isapi-freeze", app.key, py), key("pywin32", app.key, py)
                if ours_name not in results:
                    continue
                for clients in (1, 8):
                    ours, theirs = stat(results, ours_name, clients, "rps"), stat(results, theirs_name, clients, "rps")
                    native = stat(results, "native/hello", clients, "rps")
                    out.append(
                        f"| {app.title} | {py.version} | {clients} | {fmt(ours)} | {fmt(theirs)} | "
                        f"**{ratio(ours, theirs):.2f}x** | {fmt(native) if app.key in NATIVE_TWINS else ''} | "
                        f"{fmt(stat(results, ours_name, clients, 'p50_us'), 1)} / {fmt(stat(results, ours_name, clients, 'p99_us'), 1)} | "
                        f"{fmt(stat(results, theirs_name, clients, 'p50_us'), 1)} / {fmt(stat(results, theirs_name, clients, 'p99_us'), 1)} |")
        return out + ["", note]

    def throughput_targets(self, label, results, pythons):
        for app in (a for a in self.apps if a.pywin32):
            for py in pythons:
                ours_name, theirs_name = key("isapi-freeze", app.key, py), key("pywin32", app.key, py)
                if ours_name not in results:
                    continue
                for clients in (1, 8):
                    r = ratio(stat(results, ours_name, clients, "rps"), stat(results, theirs_name, clients, "rps"))
                    least = 2.0 if app.key in ("hello", "pool", "wsgi", "flask") else None
                    if least:
                        self.target(f"throughput >= 2x pywin32: {app.title}, {label}, CPython {py.version}, "
                                    f"{clients} clients", f"{r:.2f}x", r >= least)
            if app.key == "hello" and label == "in process":
                for py in pythons:
                    name = key("isapi-freeze", "hello", py)
                    if name in results and "native/hello" in results:
                        native = stat(results, "native/hello", 1, "rps")
                        r = ratio(stat(results, name, 1, "rps"), native)
                        measured = f"{r:.2f}x"
                        cost = self.costs.get(py.version)
                        if cost:
                            # Per request, hello may take at most 1/0.75 of the native time: a
                            # margin of a third of it, for the loader and the script together.
                            margin = 1e6 / native / 3
                            own = cost["hello_us"] - cost["fixed_us"]
                            measured += (f" (hello's own statements, with no loader: {own:.2f} µs per request; "
                                         f"the target's whole margin over native: {margin:.2f} µs)")
                        self.target(f"hello >= 0.75x the native extension, in process, CPython {py.version}, 1 client",
                                    measured, r >= 0.75)
        if "isapi-freeze/wsgi/" + DEFAULT.version in results and "isapi-freeze/hello/" + DEFAULT.version in results:
            for clients in (1, 8):
                r = ratio(stat(results, key("isapi-freeze", "wsgi", DEFAULT), clients, "rps"),
                          stat(results, key("isapi-freeze", "hello", DEFAULT), clients, "rps"))
                self.target(f"WSGI hello >= 0.5x SimpleExtension hello, {label}, {clients} clients", f"{r:.2f}x", r >= 0.5)
        for title, ours, theirs, least, where in ASGI_PAIRS:
            a, b = key("isapi-freeze", ours, DEFAULT), key("isapi-freeze", theirs, DEFAULT)
            if label in where and a in results and b in results:
                for clients in (1, 8):
                    r = ratio(stat(results, a, clients, "rps"), stat(results, b, clients, "rps"))
                    self.target(f"{title} >= {least:g}x, {label}, {clients} clients", f"{r:.2f}x", r >= least)

    def asgi(self):
        out = ["", "## isapi.asgi (in process and over HTTP, CPython " + DEFAULT.version + ")", "",
               "| comparison | where | clients | isapi.asgi req/s | against req/s | **ratio** | "
               "isapi.asgi p50 / p99 (µs) | against p50 / p99 (µs) |", "|---|---|---|---|---|---|---|---|"]
        for title, ours, theirs, _, _ in ASGI_PAIRS:
            a, b = key("isapi-freeze", ours, DEFAULT), key("isapi-freeze", theirs, DEFAULT)
            for label, results in (("in process", self.inproc), ("HTTP", self.http)):
                if a not in results or b not in results:
                    continue
                for clients in (1, 8):
                    x, y = stat(results, a, clients, "rps"), stat(results, b, clients, "rps")
                    out.append(f"| {title} | {label} | {clients} | {fmt(x)} | {fmt(y)} | **{ratio(x, y):.2f}x** | "
                               f"{fmt(stat(results, a, clients, 'p50_us'), 1)} / {fmt(stat(results, a, clients, 'p99_us'), 1)} | "
                               f"{fmt(stat(results, b, clients, 'p50_us'), 1)} / {fmt(stat(results, b, clients, 'p99_us'), 1)} |")
        if len(out) == 5:
            return []
        return out + ["", "The same runs as the tables above (same driver, same wrk, interleaved with the other "
                      "peers). FastAPI hello: `@app.get(\"/hello\")` returning `{\"message\": ...}`, through "
                      "`isapi.asgi.factory(app)` and through `isapi.wsgi.factory(a2wsgi.ASGIMiddleware(app))`. "
                      "Plain hello: a raw ASGI app sending a fixed 44-byte text, set against examples/wsgi's "
                      "greeting through isapi.wsgi."]

    def cold_start(self):
        out = ["", "## Cold start (LoadLibraryExW to the first complete response, in process)", "",
               "| app | CPython | isapi-freeze (ms) | pywin32 from .py files (ms) | **ratio** |", "|---|---|---|---|---|"]
        least = {"hello": 0.5, "flask": 0.4, "django": 0.4}
        for app in (a for a in self.apps if a.pywin32):
            for py in self.pythons_of(app):
                ours = median(self.inproc[key("isapi-freeze", app.key, py)]["cold"])
                theirs = median(self.inproc[key("pywin32", app.key, py)]["cold"])
                out.append(f"| {app.title} | {py.version} | {fmt(ours, 1)} | {fmt(theirs, 1)} | **{ratio(ours, theirs):.2f}x** |")
                if app.key in least:
                    r = ratio(ours, theirs)
                    self.target(f"cold start <= {least[app.key]:g}x pywin32's: {app.key}, CPython {py.version}",
                                f"{r:.2f}x", r <= least[app.key])
        out += ["", f"Medians of the throughput runs' first requests per peer (a new process each: {2 * REPS} runs "
                f"on CPython {DEFAULT.version}, {2 * REPS_OTHER} on the others).", "",
                f"### Where the cold start goes (CPython {DEFAULT.version}, medians, ms)", "",
                "| app | loader | LoadLibraryExW | GetExtensionVersion | first request | total | "
                "modules the script imports / in sys.modules then | their import time in python.exe |",
                "|---|---|---|---|---|---|---|---|"]
        for app in self.apps:
            probe = self.probes.get(app.key)
            for loader in ("isapi-freeze", "pywin32"):
                runs = self.inproc.get(key(loader, app.key, DEFAULT))
                if not runs:
                    continue
                load, init, total = median(runs["load"]), median(runs["version"]), median(runs["cold"])
                # The first request's own time, run by run (a difference of medians can be negative).
                first = median([c - l - v for c, l, v in zip(runs["cold"], runs["load"], runs["version"])])
                modules = f"{probe['modules']} / {probe['total_modules']}" if probe and loader == "pywin32" else ""
                imports = fmt(probe["import_ms"], 1) if probe and loader == "pywin32" else ""
                out.append(f"| {app.key} | {loader} | {fmt(load, 1)} | {fmt(init, 1)} | {fmt(first, 1)} | "
                           f"{fmt(total, 1)} | {modules} | {imports} |")
        out += ["", "The driver times LoadLibraryExW (the loader DLL alone), GetExtensionVersion (both "
                "loaders load python3XY.dll there, start Python and import the script) and the first "
                "HttpExtensionProc to its last byte. "
                "The modules: an instrumented run of the script's import with `python.exe -c` in pywin32's "
                "folder (the same CPython and sys.path, .pyc files written): how many modules it adds and "
                "how long that takes there."]
        return out

    def memory(self):
        if not self.http:
            return []
        out = ["", f"## Memory of the serving process (isapi-host over HTTP, CPython {DEFAULT.version}, MiB)", "",
               f"| app | loader | started | after >= {MEMORY_REQUESTS:,} requests | **vs pywin32** | peak (VmHWM) "
               "| **vs pywin32** | of which PE images (.dll/.pyd/.exe) | Wine's .so | anonymous "
               "(heaps, stacks) | other files |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        mib = lambda kib: f"{kib / 1024:.1f}"
        for app in self.apps:
            theirs = self.http.get(key("pywin32", app.key, DEFAULT))
            loaders = ["isapi-freeze", "pywin32"] + (["native"] if app.key == "hello" else [])
            for loader in loaders:
                runs = self.http.get(key(loader, app.key, DEFAULT))
                if not runs:
                    continue
                after = runs["after"]
                vs_after = vs_peak = ""
                if theirs and loader == "isapi-freeze":
                    r_after = ratio(after["VmRSS"], theirs["after"]["VmRSS"])
                    r_peak = ratio(after["VmHWM"], theirs["after"]["VmHWM"])
                    vs_after, vs_peak = f"**{r_after:.2f}x**", f"**{r_peak:.2f}x**"
                    least = 1.0 if app.key == "hello" else 1.1
                    self.target(f"memory after {MEMORY_REQUESTS:,} requests <= {least:g}x pywin32's: {app.key}",
                                f"{r_after:.2f}x", r_after <= least)
                    self.target(f"peak memory <= {least:g}x pywin32's: {app.key}", f"{r_peak:.2f}x", r_peak <= least)
                out.append(f"| {app.key} | {loader} | {mib(runs['started']['VmRSS'])} | {mib(after['VmRSS'])} | "
                           f"{vs_after} | {mib(after['VmHWM'])} | {vs_peak} | {mib(after['pe'])} | {mib(after['so'])} | "
                           f"{mib(after['anon'])} | {mib(after['other'])} |")
        out += ["", "Resident memory (VmRSS) of the isapi-host process once started (extension loaded), and "
                f"after the HTTP throughput runs, topped up to at least {MEMORY_REQUESTS:,} requests (8 keep-alive "
                "connections, each answer read and checked), with its peak (VmHWM) then; the last four columns "
                "split that resident memory by mapping, from /proc/PID/smaps (Wine maps PE files as file "
                "mappings)."]
        return out

    def freezing(self):
        if not self.frozen:
            return []
        out = ["", f"## Freezing, output size (against PyInstaller on the same source)", "",
               "| app | isapi-freeze, cold cache (s) | PyInstaller, clean (s) | **ratio** | isapi-freeze unchanged "
               "rebuild (s) | isapi-freeze size (MB) / files | PyInstaller size (MB) / files | **size ratio** |",
               "|---|---|---|---|---|---|---|---|"]
        least_size = {"hello": 0.35, "flask": 0.6, "django": 0.6}
        for app in (a for a in self.apps if not a.in_process_only):
            result = self.frozen[app.key]
            ours, theirs = result["isapi-freeze"], result["pyinstaller"]
            size = ratio(ours["size"], theirs["size"])
            if ours["cold"]:
                cold, rebuild = median(ours["cold"]), median(ours["rebuild"])
                r = ratio(cold, median(theirs["cold"]))
                timing = f"{cold:.2f} | {median(theirs['cold']):.2f} | **{r:.2f}x** | {rebuild:.3f}"
                self.target(f"freeze time <= 0.2x PyInstaller's: {app.key}", f"{r:.2f}x", r <= 0.2)
                self.target(f"unchanged rebuild < 0.5 s: {app.key}", f"{rebuild:.3f} s", rebuild < 0.5)
            else:
                timing = " |  |  | "
            if app.key in least_size:
                self.target(f"output <= {least_size[app.key]:g}x PyInstaller's size: {app.key}", f"{size:.2f}x",
                            size <= least_size[app.key])
            out.append(f"| {app.key} | {timing} | {ours['size'] / 1e6:.1f} / {ours['files']} | "
                       f"{theirs['size'] / 1e6:.1f} / {theirs['files']} | **{size:.2f}x** |")
        out += ["", f"Cold: `ISAPI_FREEZE_CACHE` an empty folder, no output folder; PyInstaller (`--onedir`, "
                f"Linux) with empty work, output and config folders; {FREEZE_REPS} runs each, interleaved (Django: "
                f"{FREEZE_REPS_OF['django']}). Rebuild: the same command again, nothing changed (twice per run). Sizes: every file of a fresh "
                f"output folder (isapi-freeze on CPython {DEFAULT.version}: the app, its DLLs and the embeddable "
                "CPython it runs on; PyInstaller: its Linux build of the same script, with the app's templates "
                "and static files added); the apps without a timed freeze had one PyInstaller build for their size."]
        return out


def report(apps, peers, sizes_only, inproc, bodies, probes, costs, http, frozen, started, out_path, full):
    r = Report(apps, peers, inproc, bodies, probes, http, frozen, costs)
    other = ", ".join(py.version for py in PYTHONS if not py.default)
    lines = ["# Benchmarks", "",
             "Generated by `make bench` (benches/compare/bench.py) on "
             f"{time.strftime('%Y-%m-%d %H:%M %Z')}, in {WALL} minutes"
             + ("" if full else f" (`--only {','.join(a.key for a in apps)}`)") + ". "
             f"Every number is the median of interleaved runs on this machine, every ratio a ratio of medians "
             "from this same run (the machine is shared and noisy: compare ratios, not absolute times).", "",
             f"To fit every supported CPython into `make bench`'s budget of {BUDGET_MINUTES} minutes on a 2-core "
             f"machine: throughput runs of {SECONDS:g} s (after 200 warm-up requests; the rates settle within "
             f"a fraction of a second), {REPS} runs per peer and client count on CPython {DEFAULT.version} (the "
             f"default) and {REPS_OTHER} on {other or 'the others'}, where only the in-process rows of hello, "
             "the thread pool, WSGI hello and Flask run (the rows with a target on every version); the HTTP "
             f"rows, memory, Django, FastAPI and ASGI run on {DEFAULT.version} only (the HTTP rows are bounded "
             "by isapi-host and wrk, not by the CPython), and freeze times are "
             f"{FREEZE_REPS} interleaved runs (Django: one; its PyInstaller build alone takes 35-80 s here). "
             "The 100,000-request soak is `make soak` (about a minute of requests after its build), "
             "no longer part of `make bench`; its section at the end is from its last run.", "",
             "## Machine and versions", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine()]
    lines += ["", "## Peers", "",
              "- **isapi-freeze**: `isapi-freeze APP.py --python target/python/cp3XY` (release build): "
              "`_APP.dll` with the script and our `isapi` package in its archive.",
              "- **pywin32**: pywin32's `PyISAPI_loader.dll` copied as `_APP.dll` beside `APP.py`, "
              "pywin32's `isapi` package, `pywintypes3XY.dll` and the same embeddable CPython of the same "
              "version; Flask, Django, FastAPI and pywin32's win32 modules as .py/.pyd files on `sys.path` "
              "(python3XY._pth), the Django project's package copied beside the script. "
              "pywin32 has no WSGI adapter, so our `isapi/wsgi.py` is copied into its `isapi` package: "
              "both loaders run the same adapter code. The first (unmeasured) run wrote `__pycache__`, "
              "so pywin32 imports from cached bytecode, its best case.",
              "- **native**: tests/fixtures/native-extension (Rust, no Python), `/hello` answering "
              "hello's exact bytes: the ceiling of the driver and the host.",
              "- **isapi.asgi** apps (`fastapi_asgi`, `asgi`) are set against our own other way to serve "
              "them (`fastapi_a2wsgi`: the same FastAPI app through a2wsgi's bridge on isapi.wsgi; "
              "`wsgi`: the WSGI hello), and pywin32 runs `fastapi_a2wsgi` for reference (it has no ASGI server).",
              "- **PyInstaller**: `pyinstaller --onedir` of the same scripts on Linux (freeze time, size).",
              "", "Every peer answered 200 with these bodies (first response of the in-process driver):", ""]
    for name in sorted(bodies):
        body = bodies[name].strip().replace("\n", " | ")
        body = re.sub(r"\s+", " ", body)
        lines.append(f"- `{name}`: `{body[:120]}`{'...' if len(body) > 120 else ''}")
    if inproc:
        lines += r.throughput("Throughput in process (driver calls HttpExtensionProc)", inproc,
                              f"Each run: {SECONDS:g} s after 200 warm-up requests, closed loop, C client threads "
                              "each waiting for its request to finish (DONE_WITH_SESSION for HSE_STATUS_PENDING).")
        if HUNG_EXITS:
            counts = ", ".join(f"{name} {HUNG_EXITS.count(name)}" for name in sorted(set(HUNG_EXITS)))
            lines += ["", f"Driver runs that printed their figures and then hung in their exit under Wine "
                      f"(killed after 90 s; the figures count): {counts}."]
        if FAILED_RUNS:
            lines += ["", "Driver runs that exited without figures and were run again (peer, clients, exit code, "
                      "the end of their output): " + "; ".join(f"{n}, {c}, {code}, `{text or 'nothing'}`"
                                                            for n, c, code, text in FAILED_RUNS) + "."]
        r.throughput_targets("in process", inproc, PYTHONS)
    if http:
        lines += r.throughput(f"Throughput over HTTP (isapi-host on loopback, wrk, CPython {DEFAULT.version})", http,
                              f"Each run: `wrk -t min(C,2) -c C -d {SECONDS:g}s --latency`, keep-alive, against one "
                              f"isapi-host per peer started before the runs and warmed by the {MEMORY_REQUESTS:,} "
                              "requests of the memory table.")
        r.throughput_targets("HTTP", http, [DEFAULT])
    lines += r.asgi()
    if inproc:
        lines += r.cold_start()
    lines += r.memory()
    lines += r.freezing()
    if full:
        r.target(f"`make bench` finishes in under {BUDGET_MINUTES} minutes", f"{WALL} min", None)
    lines += ["", "## Targets", ""] + r.rows
    notes = ROOT / "benches/compare/NOTES.md"
    if notes.exists() and full:
        lines += ["", notes.read_text().strip()]
    lines += ["", "## Exact commands", "", "```"] + COMMANDS + ["```", ""]
    out_path.write_text("\n".join(lines) + (reliability_section(out_path) if full else ""))
    (WORK / "results.json").write_text(json.dumps(
        {"inproc": inproc, "http": http, "freeze": frozen, "probes": probes, "statements": costs}, indent=1,
        default=str))


def reliability_section(path):
    """The soak bench's section of BENCHMARKS.md (benches/soak.rs writes it between its
    markers), kept when this script rewrites the file."""
    try:
        text = path.read_text()
    except OSError:
        return ""
    start = text.find("## Reliability")
    end = text.find("<!-- reliability:end -->")
    if start < 0 or end < 0:
        return ""
    return "\n\n" + text[start:end + len("<!-- reliability:end -->")] + "\n"


def finish_wall_time(path, started):
    """Puts the whole run's wall time (the report's writing included) into the report."""
    minutes = (time.time() - started) / 60
    text = path.read_text()
    text = text.replace(f"| {WALL} min | **no** |",
                        f"| {minutes:.1f} min | {'yes' if minutes < BUDGET_MINUTES else '**no**'} |")
    path.write_text(text.replace(WALL, f"{minutes:.1f}"))
    return minutes


def main():
    started = time.time()
    args = sys.argv[1:]
    only = []
    if args[:1] == ["--only"] and len(args) > 1:
        for name in args[1].replace(",", " ").split():
            if name not in GROUPS:
                raise SystemExit(f"bench: --only takes {', '.join(GROUPS)}, not {name!r}")
            only += [k for k in GROUPS[name] if k not in only]
    elif args:
        raise SystemExit("usage: bench.py [--only APP[,APP...]]")
    apps = [app for app in APPS if not only or app.key in only]
    full = not only
    out_path = Path(os.environ.get("BENCH_OUT", ROOT / "BENCHMARKS.md" if full else WORK / "BENCHMARKS-only.md"))
    peers, sizes = setup(apps)
    inproc, bodies = in_process(peers)
    probes = import_probe(peers)
    costs = statement_cost(peers)
    http = over_http(peers)
    frozen = freezing(apps, sizes)
    report(apps, peers, sizes, inproc, bodies, probes, costs, http, frozen, started, out_path, full)
    minutes = finish_wall_time(out_path, started)
    log(f"wrote {out_path} ({minutes:.1f} minutes)")


if __name__ == "__main__":
    main()
