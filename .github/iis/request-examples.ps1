# Requests each installed example through IIS over HTTP, and checks what IIS-specific
# settings do: a WSGI response streams (responseBufferLimit 0), and the application
# pool's identity writes the log (modify on logs\ only).
$ErrorActionPreference = 'Stop'
. "$PSScriptRoot\examples.ps1"
foreach ($example in $Examples) {
    $url = "http://localhost$($example.Path)"
    $response = Invoke-WebRequest -Uri $url -UseBasicParsing
    if ($response.StatusCode -ne 200) { throw "$url answered $($response.StatusCode)" }
    if ($example.Expect -and -not $response.Content.Contains($example.Expect)) {
        throw "$url answered without '$($example.Expect)': $($response.Content)"
    }
    Write-Output "$url -> $($response.StatusCode), $($response.RawContentLength) bytes"
}
# Request filtering answers before the app: IIS's 404.11 for '+' in a path.
try {
    Invoke-WebRequest -Uri 'http://localhost/hello/c++' -UseBasicParsing | Out-Null
    throw "'+' in a path reached the app"
} catch [System.Net.WebException] {
    if ([int]$_.Exception.Response.StatusCode -ne 404) { throw }
}
# The generator's chunks went out as made (responseBufferLimit 0): chunked, not buffered
# into one Content-Length response.
$stream = Invoke-WebRequest -Uri 'http://localhost/wsgi_probe/stream' -UseBasicParsing
if ($stream.Headers['Transfer-Encoding'] -ne 'chunked') { throw "the stream was buffered: $($stream.Headers | Out-String)" }
# The filter's print, written by the pool's identity into logs\ (modify there only).
$log = Join-Path $Root 'rewrite\logs\_rewrite.log'
if (-not (Select-String -Path $log -Pattern 'rewrote /legacy/rewrite/page' -Quiet)) { throw "$log has no line of the request" }
Get-Content $log -Tail 5
