#!/usr/bin/env bash
# Makes (once) the Wine prefix the tests and the demo run in: WINEPREFIX=$1.
# It starts Wine's own services with a throwaway program first, so that they do not inherit
# (and hold open) the output pipes of the first real program, and installs the
# bcryptprimitives.dll stand-in that Rust programs need under Wine 8.
set -euo pipefail
prefix=${1:?usage: prefix.sh WINEPREFIX}
here=$(cd "$(dirname "$0")" && pwd)
export WINEPREFIX=$prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
wine=${WINE:-/usr/lib/wine/wine64}
shim=$prefix/drive_c/windows/system32/bcryptprimitives.dll
if [ ! -f "$shim" ]; then
    mkdir -p "$prefix"
    echo "creating the Wine prefix $prefix (first time only)" >&2
    "$wine" cmd.exe /c exit </dev/null >/dev/null 2>&1 || true
    wineserver -w
    x86_64-w64-mingw32-gcc -O2 -shared -o "$shim.tmp" "$here/../../stub/wine/bcryptprimitives.c" -ladvapi32
    mv "$shim.tmp" "$shim"
fi
