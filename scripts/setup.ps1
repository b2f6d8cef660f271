# Set up Continuity in .\.venv (Windows PowerShell). With -Dev, also the test and lint tools.
# Needs Python 3.11+ (python.org installer or `winget install Python.Python.3.12`) and Google Chrome or Chromium.
param([switch]$Dev)
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")

$python = if (Get-Command py -ErrorAction SilentlyContinue) { "py" } else { "python" }
$pyArgs = if ($python -eq "py") { @("-3") } else { @() }
& $python @pyArgs -c "import sys; sys.exit(sys.version_info < (3, 11))"
if ($LASTEXITCODE -ne 0) { throw "Continuity needs Python 3.11 or newer." }

if (-not (Test-Path ".venv\Scripts\python.exe")) { & $python @pyArgs -m venv .venv }
$venvPython = ".venv\Scripts\python.exe"
& $venvPython -m pip install --quiet --upgrade pip
$target = if ($Dev) { ".[dev]" } else { "." }
& $venvPython -m pip install --quiet --editable $target
if ($LASTEXITCODE -ne 0) { throw "pip install failed" }

$chrome = @("$env:ProgramFiles\Google\Chrome\Application\chrome.exe",
            "${env:ProgramFiles(x86)}\Google\Chrome\Application\chrome.exe",
            "$env:LocalAppData\Google\Chrome\Application\chrome.exe") | Where-Object { Test-Path $_ } | Select-Object -First 1
if (-not $chrome) { Write-Warning "Google Chrome was not found: install it (winget install Google.Chrome) before using WhatsApp." }
Write-Host "setup: done. Run: .venv\Scripts\continuity.exe --help"
