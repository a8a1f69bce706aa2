# Enables IIS with what isapi-freeze's installer needs: the ISAPI Extensions and ISAPI
# Filters features, and the management tools (appcmd.exe). Windows Server only.
$ErrorActionPreference = 'Stop'
$features = 'Web-Server', 'Web-ISAPI-Ext', 'Web-ISAPI-Filter', 'Web-Mgmt-Tools'
$result = Install-WindowsFeature -Name $features
if (-not $result.Success) { throw "Install-WindowsFeature $features failed: $($result.ExitCode)" }
& "$env:windir\System32\inetsrv\appcmd.exe" list site
if ($LASTEXITCODE -ne 0) { throw 'appcmd does not answer' }
