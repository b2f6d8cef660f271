# Registers the Continuity watchdog with Windows Task Scheduler (boot + logon, restart on failure, no time limit).
# Usage (PowerShell):
#   powershell -ExecutionPolicy Bypass -File scripts\boot\install-task.ps1 -InstanceHome C:\Continuity\home `
#       -Python C:\Continuity\.venv\Scripts\python.exe
#   Remove it again: schtasks /Delete /TN Continuity /F
# (`continuity --home C:\Continuity\home install task` does the same from Python.)
param(
    [Parameter(Mandatory = $true)][string]$InstanceHome,
    [string]$Python = (Join-Path $PSScriptRoot "..\..\.venv\Scripts\python.exe"),
    [string]$TaskName = "Continuity"
)
$ErrorActionPreference = "Stop"
$InstanceHome = (Resolve-Path $InstanceHome).Path
$Python = (Resolve-Path $Python).Path
$User = "$env:USERDOMAIN\$env:USERNAME"
function Escape-Xml([string]$s) { [System.Security.SecurityElement]::Escape($s) }
$xml = Get-Content -Raw -Encoding UTF8 (Join-Path $PSScriptRoot "continuity-task.xml")
$xml = $xml.Replace('encoding="UTF-8"', 'encoding="UTF-16"')
$xml = $xml.Replace("__PYTHON__", (Escape-Xml $Python)).Replace("__HOME__", (Escape-Xml $InstanceHome))
$xml = $xml.Replace("__USER__", (Escape-Xml $User)).Replace("\Continuity<", "\$TaskName<")
$target = Join-Path $InstanceHome "continuity-task.xml"
[System.IO.File]::WriteAllText($target, $xml, [System.Text.Encoding]::Unicode)
schtasks /Create /XML "$target" /TN "$TaskName" /F
if ($LASTEXITCODE -ne 0) { throw "schtasks /Create failed ($LASTEXITCODE)" }
schtasks /Run /TN "$TaskName"
Write-Host "Registered and started task $TaskName. Check: schtasks /Query /TN $TaskName /V /FO LIST"
