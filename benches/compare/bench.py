"""`make bench`: isapi-freeze side by side with pywin32's ISAPI loader, a native ISAPI
extension and PyInstaller, measured on this machine in one run; writes BENCHMARKS.md.

Every ISAPI peer runs under the same Wine, the same in-process driver
(benches/driver) and the same isapi-host. Repetitions are interleaved across peers so that
the machine's noise falls on all of them alike; each table gives medians, and every
comparison is a ratio of medians from this run.

Environment: BENCH_REPS (default 3), BENCH_SECONDS (per measurement, default 2),
BENCH_OUT (default BENCHMARKS.md).
"""

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "target"
STUBS = TARGET / "x86_64-pc-windows-gnu/release"
CLI = TARGET / "release/isapi-freeze"


def default_python():
    """The default CPython of stub/format/pythons.txt: (version, ABI tag, requirement)."""
    for line in (ROOT / "stub/format/pythons.txt").read_text().splitlines():
        fields = line.split()
        if fields and not line.startswith("#") and fields[1] == "default":
            return fields[0], "cp" + fields[0].replace(".", ""), fields[2]
    raise SystemExit("stub/format/pythons.txt names no default version")


VERSION, TAG, EMBEDDABLE = default_python()
STEM = "python" + TAG[2:]
PYTHON = TARGET / "python" / TAG
SITES = TARGET / "site" / TAG
WORK = TARGET / "bench"
VENV = WORK / "venv"
WINE = os.environ.get("WINE", "/usr/lib/wine/wine64")
REPS = int(os.environ.get("BENCH_REPS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "2"))
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "BENCHMARKS.md"))


def reliability_section():
    """The soak bench's section of the current BENCHMARKS.md (benches/soak.rs writes it
    between its markers), kept when this script rewrites the file."""
    try:
        text = OUT.read_text()
    except OSError:
        return ""
    start = text.find("## Reliability")
    end = text.find("<!-- reliability:end -->")
    if start < 0 or end < 0:
        return ""
    return "\n\n" + text[start:end + len("<!-- reliability:end -->")] + "\n"
PYINSTALLER = "pyinstaller==6.16.0"
FLASK_LINUX = "flask==3.1.3"

ENV = dict(os.environ, WINEPREFIX=str(TARGET / "wine"), WINEDEBUG="-all")
COMMANDS = []  # every command line the report shows, in order of first use


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
    return statistics.median(values) if values else float("nan")


# ---------------------------------------------------------------------------------------
# The applications and the peers that serve them


class App:
    def __init__(self, key, title, script, path, extra=(), pywin32_extra=(), pywin32=True):
        self.key = key
        self.title = title
        self.script = script
        self.path = path  # the request path measured
        self.extra = list(extra)  # isapi-freeze options
        self.pywin32_extra = list(pywin32_extra)  # (source, name) copied beside the script
        self.pywin32 = pywin32  # False: compared with another app of ours (ASGI_PAIRS), not pywin32


FLASK_DIR = ROOT / "examples/flask_app"
APPS = [
    App("hello", "hello, SimpleExtension", ROOT / "examples/hello/hello.py", "/hello"),
    App("pool", "hello, ThreadPoolExtension", ROOT / "benches/compare/apps/hello_pool.py", "/hello"),
    App("wsgi", "hello through isapi.wsgi", ROOT / "examples/wsgi/wsgi_hello.py", "/"),
    App(
        "flask",
        "Flask example (template page)",
        FLASK_DIR / "app.py",
        "/",
        # The app factory's package ships its templates and static files as package data.
        extra=["--path", SITES / "flask"],
        pywin32_extra=[(FLASK_DIR / "hello_site", "hello_site")],
    ),
    # isapi.asgi against what ran FastAPI on IIS before it (pywin32 has no ASGI server).
    App("fastapi_asgi", "FastAPI hello JSON through isapi.asgi", ROOT / "benches/compare/apps/fastapi_asgi.py",
        "/hello", extra=["--path", SITES / "fastapi"], pywin32=False),
    App("fastapi_a2wsgi", "FastAPI hello JSON through a2wsgi on isapi.wsgi",
        ROOT / "benches/compare/apps/fastapi_a2wsgi.py", "/hello", extra=["--path", SITES / "fastapi"],
        pywin32=False),
    App("asgi", "hello through isapi.asgi", ROOT / "benches/compare/apps/asgi_hello.py", "/", pywin32=False),
]
PYWIN32_APPS = [app for app in APPS if app.pywin32]
# (title, ours, the app it is set against, the least ratio the issue asks for and where).
ASGI_PAIRS = [
    ("FastAPI hello JSON: isapi.asgi / a2wsgi on isapi.wsgi", "fastapi_asgi", "fastapi_a2wsgi", 2.0, ("in process",)),
    ("plain hello: isapi.asgi / isapi.wsgi", "asgi", "wsgi", 0.5, ("in process", "HTTP")),
]


class Peer:
    """One DLL to drive: the folder it runs in (also the current folder, where Windows finds
    the DLLs a loader imports statically) and the request path."""

    def __init__(self, loader, app, dll, path):
        self.loader = loader
        self.app = app
        self.dll = dll
        self.path = path
        self.name = f"{loader}/{app}"


def freeze(app, dist, cache):
    command = [CLI, app.script, "--python", PYTHON, "--dist-dir", dist, *app.extra]
    env = dict(ENV, ISAPI_FREEZE_CACHE=str(cache), ISAPI_FREEZE_STUBS=str(TARGET / "stubs"))
    began = time.perf_counter()
    run(command, env=env, cwd=ROOT)
    return time.perf_counter() - began


def pywin32_folder(app, folder):
    """pywin32's loader as its users deploy it: PyISAPI_loader.dll copied as _NAME.dll beside
    NAME.py, pywin32's own isapi package, pywintypes3XY.dll and the same embeddable CPython;
    the app's packages from .py files on sys.path (python3XY._pth). isapi.wsgi is ours (pywin32
    has none), copied into pywin32's isapi package so both loaders run the same adapter."""
    site = SITES / "pywin32"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(PYTHON, folder)
    name = app.script.stem
    shutil.copy(site / "isapi/PyISAPI_loader.dll", folder / f"_{name}.dll")
    shutil.copy(site / f"pywin32_system32/pywintypes{TAG[2:]}.dll", folder)
    shutil.copy(app.script, folder / app.script.name)
    shutil.copytree(site / "isapi", folder / "isapi", ignore=shutil.ignore_patterns("__pycache__", "doc", "samples", "test"))
    for module in ("wsgi.py", "_errorpage.py"):
        shutil.copy(ROOT / "resources/isapi" / module, folder / "isapi" / module)
    for source, target in app.pywin32_extra:
        shutil.copytree(source, folder / target)
    paths = [f"{STEM}.zip", ".", win_path(site / "win32"), win_path(site / "win32/lib")]
    if app.key == "flask":
        paths.append(win_path(SITES / "flask"))
    (folder / f"{STEM}._pth").write_text("\n".join(paths) + "\n")
    return folder / f"_{name}.dll"


def setup():
    for needed, how in [(CLI, "make cli"), (STUBS / "isapi-bench-driver.exe", "make bench"),
                        (PYTHON / f"{STEM}.dll", "make python"), (SITES / "pywin32/.done", "make sites"),
                        (SITES / "fastapi/.done", "make sites")]:
        if not needed.exists():
            raise SystemExit(f"bench: missing {needed} ({how})")
    WORK.mkdir(parents=True, exist_ok=True)
    # Wine's services start with the first program of a session and keep its output pipes
    # open; a throwaway first program keeps them away from the measured ones.
    subprocess.run([WINE, "cmd.exe", "/c", "exit"], env=ENV, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    if not (VENV / "bin/pyinstaller").exists():
        log(f"installing {PYINSTALLER} and {FLASK_LINUX} into {VENV}")
        run([sys.executable, "-m", "venv", VENV])
        run([VENV / "bin/pip", "install", "--quiet", "--disable-pip-version-check", PYINSTALLER, FLASK_LINUX])
    peers = []
    cache = WORK / "cache"
    for app in APPS:
        dist = WORK / "ours" / app.key
        freeze(app, dist, cache)
        peers.append(Peer("isapi-freeze", app.key, dist / f"_{app.script.stem}.dll", app.path))
        if app.pywin32:
            dll = pywin32_folder(app, WORK / "pywin32" / app.key)
            peers.append(Peer("pywin32", app.key, dll, app.path))
    peers.append(Peer("native", "hello", STUBS / "native_extension.dll", "/hello"))
    return peers


# ---------------------------------------------------------------------------------------
# In process: the driver calls HttpExtensionProc


# Driver runs that printed their figures and then never exited (peer names): under Wine a
# process whose unload leaves threads running (a2wsgi's event loop thread) can hang in its
# exit. The figures came before the unload, so they count; the report says how often.
HUNG_EXITS = []


def drive(peer, clients, seconds, warmup=200):
    command = [WINE, STUBS / "isapi-bench-driver.exe", win_path(peer.dll), "--path", peer.path,
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
        raise SystemExit(f"bench: {command} failed ({process.returncode}):\n{out}\n{err}")
    return json.loads(line)


def check_response(peer, response):
    head, _, body = response.partition("\r\n\r\n")
    if not head.startswith("HTTP/1.1 200"):
        raise SystemExit(f"bench: {peer.name} answered {head!r} {body[:500]!r}")
    return body


def in_process(peers):
    results = {p.name: {"cold": [], 1: [], 8: []} for p in peers}
    bodies = {}
    for peer in peers:
        # A first run checks the answer and lets pywin32's CPython write its __pycache__.
        first = drive(peer, 1, 0, warmup=0)
        bodies[peer.name] = check_response(peer, first["first_response"])
    for rep in range(REPS):
        for clients in (1, 8):
            for peer in peers:
                log(f"in process: {peer.name}, {clients} clients, run {rep + 1}/{REPS}")
                result = drive(peer, clients, SECONDS)
                results[peer.name][clients].append(result)
                results[peer.name]["cold"].append(result["cold_start_ms"])
    return results, bodies


# ---------------------------------------------------------------------------------------
# Over HTTP: isapi-host on loopback, wrk as the load generator


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

    def peak_memory_kib(self):
        """VmHWM of the serving process (Wine runs it in the process we started)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))

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
    return {"rps": rps, "p50_us": latency(50), "p99_us": latency(99)}


def over_http(peers):
    results = {p.name: {1: [], 8: [], "memory_kib": None} for p in peers}
    hosts = {}
    try:
        for peer in peers:
            log(f"http: starting isapi-host for {peer.name}")
            hosts[peer.name] = Host(peer)
            wrk(hosts[peer.name].address, peer.path, 8, 1)  # warm up
        for rep in range(REPS):
            for clients in (1, 8):
                for peer in peers:
                    log(f"http: {peer.name}, {clients} clients, run {rep + 1}/{REPS}")
                    results[peer.name][clients].append(wrk(hosts[peer.name].address, peer.path, clients, SECONDS))
        for peer in peers:
            results[peer.name]["memory_kib"] = hosts[peer.name].peak_memory_kib()
    finally:
        for host in hosts.values():
            host.stop()
    return results


# ---------------------------------------------------------------------------------------
# Freezing: isapi-freeze against PyInstaller on the same source


def tree_size(folder):
    files = [p for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files), len(files)


def pyinstaller(app, root, clean):
    """PyInstaller --onedir of the same script on Linux; our isapi package (pure Python) is on
    its path, as for isapi-freeze. A clean build gets fresh work, output and config folders
    (PyInstaller caches there); a rebuild keeps them."""
    name = app.script.stem
    if clean and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    command = [VENV / "bin/pyinstaller", "--onedir", "--noconfirm", "--log-level", "WARN",
               "--distpath", root / "dist", "--workpath", root / "build", "--specpath", root,
               "--paths", ROOT / "resources", app.script]
    if app.key == "flask":
        command[-1:-1] = ["--add-data", f"{FLASK_DIR}/hello_site/templates:hello_site/templates",
                          "--add-data", f"{FLASK_DIR}/hello_site/static:hello_site/static"]
    env = dict(ENV, PYINSTALLER_CONFIG_DIR=str(root / "config"))
    began = time.perf_counter()
    run(command, env=env, cwd=root)
    return time.perf_counter() - began, root / "dist" / name


def freezing():
    results = {}
    for app in (a for a in APPS if a.key in ("hello", "flask")):
        ours = {"cold": [], "rebuild": []}
        theirs = {"cold": [], "rebuild": []}
        for rep in range(REPS):
            log(f"freeze: {app.key}, run {rep + 1}/{REPS}")
            cache = Path(tempfile.mkdtemp(dir=WORK, prefix="cache-"))
            dist = WORK / "freeze" / app.key / "dist"
            if dist.exists():
                shutil.rmtree(dist)
            ours["cold"].append(freeze(app, dist, cache))
            ours["rebuild"].append(freeze(app, dist, cache))
            ours["rebuild"].append(freeze(app, dist, cache))
            shutil.rmtree(cache)
            seconds, out = pyinstaller(app, WORK / "pyinstaller" / app.key, clean=True)
            theirs["cold"].append(seconds)
            seconds, out = pyinstaller(app, WORK / "pyinstaller" / app.key, clean=False)
            theirs["rebuild"].append(seconds)
        ours["size"], ours["files"] = tree_size(dist)
        theirs["size"], theirs["files"] = tree_size(out)
        results[app.key] = {"isapi-freeze": ours, "pyinstaller": theirs}
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
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} logical CPUs"),
        ("Memory", f"{memory} MiB"),
        ("System", f"{platform.platform()}"),
        ("Wine", version([WINE, "--version"])),
        ("rustc", version(["rustc", "--version"])),
        ("Windows CPython", f"{VERSION} embeddable ({EMBEDDABLE} on PyPI), the same for every Python peer"),
        ("pywin32", (SITES / "pywin32/pywin32.version.txt").read_text().strip() + f" ({TAG} win_amd64 wheel)"),
        ("PyInstaller", version([VENV / "bin/pyinstaller", "--version"]) + f" on Linux CPython {platform.python_version()}"),
        ("wrk", version(["wrk", "--version"], r"(wrk \S+)")),
    ]


def ratio(a, b):
    return a / b if b else float("nan")


def fmt(value, digits=0):
    return f"{value:,.{digits}f}"


def report(peers, inproc, bodies, http, freeze_results, started):
    names = [p.name for p in peers]
    lines = ["# Benchmarks", "",
             "Generated by `make bench` (benches/compare/bench.py) on "
             f"{time.strftime('%Y-%m-%d %H:%M %Z')}, in {(time.time() - started) / 60:.1f} minutes. "
             "Every number is the median of "
             f"{REPS} interleaved runs on this machine, every ratio a ratio of medians from this "
             "same run (the machine is shared and noisy: compare ratios, not absolute times).", "",
             "## Machine and versions", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine()]
    lines += ["", "## Peers", "",
              f"- **isapi-freeze**: `isapi-freeze APP.py --python target/python/{TAG}` (release build): "
              "`_APP.dll` with the script and our `isapi` package in its archive.",
              "- **pywin32**: pywin32's `PyISAPI_loader.dll` copied as `_APP.dll` beside `APP.py`, "
              "pywin32's `isapi` package, `pywintypes3XY.dll` and the same embeddable CPython; "
              "Flask and pywin32's win32 modules as .py/.pyd files on `sys.path` (python3XY._pth). "
              "pywin32 has no WSGI adapter, so our `isapi/wsgi.py` is copied into its `isapi` package: "
              "both loaders run the same adapter code. The first (unmeasured) run wrote `__pycache__`, "
              "so pywin32 imports from cached bytecode, its best case.",
              "- **native**: tests/fixtures/native-extension (Rust, no Python), `/hello` answering "
              "hello's exact bytes: the ceiling of the driver and the host.",
              "- **isapi.asgi** apps (`fastapi_asgi`, `asgi`) are set against our own other way to serve "
              "them (`fastapi_a2wsgi`: the same FastAPI app through a2wsgi's bridge on isapi.wsgi; "
              "`wsgi`: the WSGI hello), not against pywin32, which has no ASGI server.",
              "- **PyInstaller**: `pyinstaller --onedir` of the same scripts on Linux (freeze time, size).",
              "", "Every peer answered 200 with these bodies (first response of the in-process driver):", ""]
    for name in names:
        body = bodies[name].strip().replace("\n", " | ")
        lines.append(f"- `{name}`: `{body[:120]}`{'...' if len(body) > 120 else ''}")

    def table(title, results, kind):
        out = ["", f"## {title}", "",
               "| app | clients | isapi-freeze req/s | pywin32 req/s | **ratio** | native req/s | "
               "isapi-freeze p50 / p99 (µs) | pywin32 p50 / p99 (µs) |", "|---|---|---|---|---|---|---|---|"]
        for app in PYWIN32_APPS:
            for clients in (1, 8):
                def stat(loader, key, app_key=app.key):
                    runs = results.get(f"{loader}/{app_key}", {}).get(clients, [])
                    return median([r[key] for r in runs])
                ours, theirs = stat("isapi-freeze", "rps"), stat("pywin32", "rps")
                native = fmt(stat("native", "rps", "hello")) if app.key == "hello" else ""
                out.append(
                    f"| {app.title} | {clients} | {fmt(ours)} | {fmt(theirs)} | **{ratio(ours, theirs):.2f}x** | {native} | "
                    f"{fmt(stat('isapi-freeze', 'p50_us'), 1)} / {fmt(stat('isapi-freeze', 'p99_us'), 1)} | "
                    f"{fmt(stat('pywin32', 'p50_us'), 1)} / {fmt(stat('pywin32', 'p99_us'), 1)} |")
        return out

    lines += table("Throughput in process (driver calls HttpExtensionProc)", inproc, "inproc")
    lines += ["", f"Each run: {SECONDS:g} s after 200 warm-up requests, closed loop, C client threads "
              "each waiting for its request to finish (DONE_WITH_SESSION for HSE_STATUS_PENDING)."]
    if HUNG_EXITS:
        counts = ", ".join(f"{name} {HUNG_EXITS.count(name)}" for name in sorted(set(HUNG_EXITS)))
        lines += ["", f"Driver runs that printed their figures and then hung in their exit under Wine "
                  f"(killed after 90 s; the figures count): {counts}."]
    lines += table("Throughput over HTTP (isapi-host on loopback, wrk)", http, "http")
    lines += ["", f"Each run: `wrk -t min(C,2) -c C -d {SECONDS:g}s --latency`, keep-alive, against one "
              "isapi-host per peer started before the runs (1 s warm-up each)."]
    lines += asgi_table(inproc, http)

    lines += ["", "## Cold start (LoadLibraryExW to the first complete response, in process)", "",
              "| app | isapi-freeze (ms) | pywin32 from .py files (ms) | **ratio** |", "|---|---|---|---|"]
    for app in PYWIN32_APPS:
        ours = median(inproc[f"isapi-freeze/{app.key}"]["cold"])
        theirs = median(inproc[f"pywin32/{app.key}"]["cold"])
        lines.append(f"| {app.title} | {fmt(ours, 1)} | {fmt(theirs, 1)} | **{ratio(ours, theirs):.2f}x** |")
    lines += ["", f"Medians of the {2 * REPS} throughput runs' first requests per peer (a new process each)."]

    lines += ["", "## Freezing, output size (against PyInstaller on the same source)", "",
              "| app | isapi-freeze, cold cache (s) | PyInstaller, clean (s) | **ratio** | isapi-freeze unchanged "
              "rebuild (s) | PyInstaller rebuild (s) | isapi-freeze size (MB) / files | PyInstaller size (MB) / files | **size ratio** |",
              "|---|---|---|---|---|---|---|---|---|"]
    for key, result in freeze_results.items():
        ours, theirs = result["isapi-freeze"], result["pyinstaller"]
        lines.append(
            f"| {key} | {median(ours['cold']):.2f} | {median(theirs['cold']):.2f} | "
            f"**{ratio(median(ours['cold']), median(theirs['cold'])):.2f}x** | {median(ours['rebuild']):.3f} | "
            f"{median(theirs['rebuild']):.2f} | {ours['size'] / 1e6:.1f} / {ours['files']} | "
            f"{theirs['size'] / 1e6:.1f} / {theirs['files']} | **{ratio(ours['size'], theirs['size']):.2f}x** |")
    lines += ["", "Cold: `ISAPI_FREEZE_CACHE` an empty folder, no output folder; PyInstaller with empty "
              "work, output and config folders. Rebuild: the same command again, nothing changed "
              f"(isapi-freeze: median of {2 * REPS}). Sizes: every file of the output folder."]

    lines += ["", "## Peak memory of the serving process (isapi-host, VmHWM after the HTTP runs)", "",
              "| app | isapi-freeze (MiB) | pywin32 (MiB) | native (MiB) |", "|---|---|---|---|"]
    for app in PYWIN32_APPS:
        mem = lambda loader, key=app.key: http.get(f"{loader}/{key}", {}).get("memory_kib")
        native = f"{mem('native', 'hello') / 1024:.0f}" if app.key == "hello" else ""
        lines.append(f"| {app.title} | {mem('isapi-freeze') / 1024:.0f} | {mem('pywin32') / 1024:.0f} | {native} |")

    lines += ["", "## Targets", ""] + targets(inproc, http, freeze_results)
    notes = ROOT / "benches/compare/NOTES.md"
    if notes.exists():
        lines += ["", notes.read_text().strip()]
    lines += ["", "## Exact commands", "", "```"] + COMMANDS + ["```", ""]
    OUT.write_text("\n".join(lines) + reliability_section())
    (WORK / "results.json").write_text(json.dumps(
        {"inproc": inproc, "http": http, "freeze": freeze_results}, indent=1, default=str))


def asgi_table(inproc, http):
    """isapi.asgi against the app it is set against (ASGI_PAIRS), in process and over HTTP."""
    out = ["", "## isapi.asgi (in process and over HTTP)", "",
           "| comparison | where | clients | isapi.asgi req/s | against req/s | **ratio** | "
           "isapi.asgi p50 / p99 (µs) | against p50 / p99 (µs) |", "|---|---|---|---|---|---|---|---|"]
    for title, ours, theirs, _, _ in ASGI_PAIRS:
        for label, results in (("in process", inproc), ("HTTP", http)):
            for clients in (1, 8):
                def stat(key, what):
                    return median([r[what] for r in results.get(f"isapi-freeze/{key}", {}).get(clients, [])])
                a, b = stat(ours, "rps"), stat(theirs, "rps")
                out.append(f"| {title} | {label} | {clients} | {fmt(a)} | {fmt(b)} | **{ratio(a, b):.2f}x** | "
                           f"{fmt(stat(ours, 'p50_us'), 1)} / {fmt(stat(ours, 'p99_us'), 1)} | "
                           f"{fmt(stat(theirs, 'p50_us'), 1)} / {fmt(stat(theirs, 'p99_us'), 1)} |")
    out += ["", "The same runs as the tables above (same driver, same wrk, interleaved with the other "
            "peers). FastAPI hello: `@app.get(\"/hello\")` returning `{\"message\": ...}`, through "
            "`isapi.asgi.factory(app)` and through `isapi.wsgi.factory(a2wsgi.ASGIMiddleware(app))`. "
            "Plain hello: a raw ASGI app sending a fixed 44-byte text, set against examples/wsgi's "
            "greeting through isapi.wsgi."]
    return out


def targets(inproc, http, freeze_results):
    def rps(results, name, clients):
        return median([r["rps"] for r in results[name][clients]])

    rows = ["| target | measured | met |", "|---|---|---|"]

    def row(text, value, ok):
        rows.append(f"| {text} | {value} | {'yes' if ok else '**no**'} |")

    for label, results in (("in process", inproc), ("HTTP", http)):
        for app in PYWIN32_APPS:
            for clients in (1, 8):
                r = ratio(rps(results, f"isapi-freeze/{app.key}", clients), rps(results, f"pywin32/{app.key}", clients))
                row(f"throughput >= 2x pywin32: {app.title}, {label}, {clients} clients", f"{r:.2f}x", r >= 2)
        for clients in (1, 8):
            r = ratio(rps(results, "isapi-freeze/wsgi", clients), rps(results, "isapi-freeze/hello", clients))
            row(f"WSGI hello >= 0.5x SimpleExtension hello, {label}, {clients} clients", f"{r:.2f}x", r >= 0.5)
        for title, ours, theirs, least, where in ASGI_PAIRS:
            if label not in where:
                continue
            for clients in (1, 8):
                r = ratio(rps(results, f"isapi-freeze/{ours}", clients), rps(results, f"isapi-freeze/{theirs}", clients))
                row(f"{title} >= {least:g}x, {label}, {clients} clients", f"{r:.2f}x", r >= least)
    r = ratio(median(inproc["isapi-freeze/flask"]["cold"]), median(inproc["pywin32/flask"]["cold"]))
    row("Flask cold start <= 0.5x pywin32 from .py files", f"{r:.2f}x", r <= 0.5)
    for key, result in freeze_results.items():
        ours, theirs = result["isapi-freeze"], result["pyinstaller"]
        r = ratio(median(ours["cold"]), median(theirs["cold"]))
        row(f"freeze time <= 0.2x PyInstaller: {key}", f"{r:.2f}x", r <= 0.2)
        rebuild = median(ours["rebuild"])
        row(f"unchanged rebuild < 0.5 s: {key}", f"{rebuild:.3f} s", rebuild < 0.5)
        r = ratio(ours["size"], theirs["size"])
        row(f"output <= 0.7x PyInstaller's size: {key}", f"{r:.2f}x", r <= 0.7)
    return rows


def main():
    started = time.time()
    only = set(sys.argv[1:])  # e.g. `inproc http freeze` (default all)
    peers = setup()
    inproc, bodies = in_process(peers) if not only or "inproc" in only else ({}, {})
    http = over_http(peers) if not only or "http" in only else {}
    freeze_results = freezing() if not only or "freeze" in only else {}
    if only:
        print(json.dumps({"inproc": inproc, "http": http, "freeze": freeze_results}, indent=1, default=str))
        return
    report(peers, inproc, bodies, http, freeze_results, started)
    log(f"wrote {OUT}")


if __name__ == "__main__":
    main()
