# Removes every example with SCRIPT.exe remove, which takes back what install added.
$ErrorActionPreference = 'Stop'
. "$PSScriptRoot\examples.ps1"
foreach ($example in $Examples) {
    & (Join-Path (Join-Path $Root $example.Name) "$($example.Name).exe") remove
    if ($LASTEXITCODE -ne 0) { throw "removing $($example.Name) failed" }
}
