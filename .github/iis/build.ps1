# Builds the Windows CLI and the stubs it carries with MSVC, in the layout the CLI finds
# (target\stubs: loader, launcher, isapi-host, cp3XY\isapi_freeze_runtime.dll), for the
# CPython on PATH (actions/setup-python, or a python.org installation by hand).
$ErrorActionPreference = 'Stop'
$version = (& python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")').Trim()
$tag = 'cp' + $version.Replace('.', '')
cargo build --release -p isapi-freeze -p isapi-freeze-loader -p isapi-freeze-launcher -p isapi-host
if ($LASTEXITCODE -ne 0) { throw 'cargo build failed' }
$env:PYO3_PYTHON = (Get-Command python).Source
cargo build --release -p isapi-freeze-runtime --target-dir "target\runtime\$tag"
if ($LASTEXITCODE -ne 0) { throw 'cargo build of the runtime failed' }
$stubs = 'target\stubs'
New-Item -ItemType Directory -Force -Path "$stubs\$tag" | Out-Null
Copy-Item target\release\isapi_freeze_loader.dll, target\release\isapi-freeze-launcher.exe, target\release\isapi-host.exe $stubs
Copy-Item "target\runtime\$tag\release\isapi_freeze_runtime.dll" "$stubs\$tag"
Write-Output "stubs for CPython $version in $stubs"
