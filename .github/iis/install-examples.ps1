# Freezes each example with the CPython on PATH and installs it into IIS with
# SCRIPT.exe install (appcmd, the way a server is set up; not --config).
$ErrorActionPreference = 'Stop'
. "$PSScriptRoot\examples.ps1"
$python = Split-Path (Get-Command python).Source
foreach ($example in $Examples) {
    $dist = Join-Path $Root $example.Name
    $freeze = @($example.Script, '--python', $python, '--dist-dir', $dist)
    if ($example.Requirements) { $freeze += @('-r', $example.Requirements) }
    & $Cli @freeze
    if ($LASTEXITCODE -ne 0) { throw "freezing $($example.Script) failed" }
    & (Join-Path $dist "$($example.Name).exe") install
    if ($LASTEXITCODE -ne 0) { throw "installing $($example.Name) failed" }
}
& "$env:windir\System32\inetsrv\appcmd.exe" list app
