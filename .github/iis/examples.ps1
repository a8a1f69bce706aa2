# The examples the IIS run freezes, installs and requests (dot-sourced by the other
# scripts): the script, what `pip install` it needs, and a request with what its answer
# must contain.
$Examples = @(
    @{ Name = 'hello'; Script = 'examples\hello\hello.py'; Path = '/hello/world?name=iis'; Expect = 'query: name=iis' },
    # The filter rewrites /legacy/REST to /REST, so this reaches the extension at /rewrite.
    @{ Name = 'rewrite'; Script = 'examples\filter\rewrite.py'; Path = '/legacy/rewrite/page?x=1'; Expect = 'query: x=1' },
    @{ Name = 'wsgi_hello'; Script = 'examples\wsgi\wsgi_hello.py'; Path = '/wsgi_hello/'; Expect = 'Hello from a WSGI application' },
    @{ Name = 'wsgi_probe'; Script = 'tests\fixtures\scripts\wsgi_probe.py'; Path = '/wsgi_probe/stream'; Expect = 'chunk 4' },
    @{ Name = 'app'; Script = 'examples\flask_app\app.py'; Requirements = 'examples\flask_app\requirements.txt'; Path = '/app/'; Expect = '' }
)
# Where the frozen folders go (target\iis), and the CLI and stubs build.ps1 made.
$Root = Join-Path (Get-Location) 'target\iis'
$Cli = Join-Path (Get-Location) 'target\release\isapi-freeze.exe'
$env:ISAPI_FREEZE_STUBS = Join-Path (Get-Location) 'target\stubs'
