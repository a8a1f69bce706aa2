# Writes what install changes in IIS's configuration (pools, applications, the ISAPI
# restrictions and filters, every location's handlers) to a file; with -Compare, fails
# unless it equals an earlier snapshot.
param([Parameter(Mandatory)] [string] $Out, [string] $Compare)
$ErrorActionPreference = 'Stop'
$appcmd = "$env:windir\System32\inetsrv\appcmd.exe"
New-Item -ItemType Directory -Force -Path (Split-Path $Out) | Out-Null
$lines = @()
$lines += & $appcmd list apppool
$lines += & $appcmd list app
$lines += & $appcmd list config -section:system.webServer/security/isapiCgiRestriction
$lines += & $appcmd list config -section:system.webServer/isapiFilters
$lines += & $appcmd list config -section:system.webServer/handlers
Set-Content -Path $Out -Value $lines
if ($Compare) {
    $difference = Compare-Object (Get-Content $Compare) (Get-Content $Out)
    if ($difference) { $difference | Format-Table | Out-String | Write-Output; throw "IIS's configuration changed" }
    Write-Output "IIS's configuration is as it was before install"
}
