"""Stand-in for pywin32's win32traceutil, for scripts that `import win32traceutil` as
pywin32's samples do: from then on print() output and tracebacks go to the trace log
(DIST/logs/NAME.log), which `isapi-freeze trace DIST` or `SCRIPT.exe trace` follows live.
Inside an ISAPI DLL that is already so; in SCRIPT.exe it redirects stdout and stderr.
pywin32's two functions are here too: SetupForPrint() (what importing does) and
RunAsCollector() (prints the logs as they grow, until Ctrl+C).
"""

import os
import sys

import _isapi_freeze_boot


def SetupForPrint():
    """Sends print() output and tracebacks to the trace log (importing this module already
    did; calling it again changes nothing)."""
    if not isinstance(sys.stdout, _isapi_freeze_boot.LogWriter):
        sys.stdout = _isapi_freeze_boot.LogWriter("stdout")
    if not isinstance(sys.stderr, _isapi_freeze_boot.LogWriter):
        sys.stderr = _isapi_freeze_boot.LogWriter("stderr")


def RunAsCollector():
    """Prints what is written to the output folder's logs from now on, until Ctrl+C, as
    pywin32's collector printed its trace buffer. It writes to the console the program
    started with: print() itself goes to the log, which would echo it back."""
    import time

    console = sys.__stdout__
    folder = os.path.join(_isapi_freeze_boot.DIST, "logs")
    # Where each log was when collecting began: only what comes after is shown.
    read_to = _log_sizes(folder)
    console.write("Collecting Python Trace Output...\n")
    console.flush()
    try:
        while True:
            for name, size in _log_sizes(folder).items():
                start = read_to.get(name, 0)
                if size < start:
                    start = 0  # the log was started again
                if size > start:
                    with open(os.path.join(folder, name), "rb") as log:
                        log.seek(start)
                        console.write(log.read(size - start).decode("utf-8", "replace"))
                    console.flush()
                read_to[name] = size
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.write("Ctrl+C\n")


def _log_sizes(folder):
    """{file name: size} of the logs in `folder`, which may not exist yet."""
    sizes = {}
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".log"))
    except OSError:
        return sizes
    for name in names:
        try:
            sizes[name] = os.path.getsize(os.path.join(folder, name))
        except OSError:
            pass
    return sizes


SetupForPrint()
