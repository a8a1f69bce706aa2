"""Stand-in for pywin32's win32traceutil, for scripts that `import win32traceutil` as
pywin32's samples do: from then on print() output and tracebacks go to the trace log
(DIST/logs/NAME.log), which `isapi-freeze trace DIST` or `SCRIPT.exe trace` follows live.
Inside an ISAPI DLL that is already so; in SCRIPT.exe it redirects stdout and stderr.
"""

import sys

import _isapi_freeze_boot

if not isinstance(sys.stdout, _isapi_freeze_boot.LogWriter):
    sys.stdout = _isapi_freeze_boot.LogWriter("stdout")
if not isinstance(sys.stderr, _isapi_freeze_boot.LogWriter):
    sys.stderr = _isapi_freeze_boot.LogWriter("stderr")
