"""The layout keeps its promises: the worker reaches the watchdog side only through the instance contract
(`continuity.watchdog.instance`), the command line lives in one package (`watchdog/cli/`), neither the worker nor
the watchdog's library imports the dev tools (`devtools/`), each environment variable name is defined once, and an
idle watchdog loads none of the modules its memory budget cannot afford."""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import continuity.watchdog.instance as instance
from continuity.watchdog.instance import MODULES_DUMP_ENV, Home
from tests._imports import imported_modules
from tests._watchdog_harness import events, start_watchdog, stop_watchdog, wait_for, wait_for_event, write_config

REPO = Path(__file__).resolve().parent.parent
WORKER = REPO / "worker"
WATCHDOG = REPO / "watchdog"
DEVTOOLS = REPO / "devtools"
CLI = WATCHDOG / "cli"
CONTRACT = "continuity.watchdog.instance"

# Watchdog modules the worker may import besides the contract: (watchdog module, worker files, why). Keep it short.
EXCEPTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "continuity.watchdog.checks": (
        ("browser/doctor.py",),
        "`continuity doctor` shows one kind of line (Check, PASS/WARN/FAIL): the browser's checks give the shape "
        "the machine's and home's checks define",
    ),
    "continuity.watchdog.logsetup": (
        ("main.py",),
        "the worker's stderr log has the format of the watchdog's log files, defined once there",
    ),
    "continuity.watchdog.signal_relay": (
        ("loop.py",),
        "the one signal-to-thread relay both processes stop by (a handler that only writes to a pipe)",
    ),
    "continuity.watchdog.profile_procs": (
        ("browser/hygiene.py",),
        "one way to find and kill a profile's Chromium (psutil only): the watchdog's sweep, the launch hygiene",
    ),
}


def _module_of(path: Path) -> list[str]:
    """The dotted package of a file under the repo (the repo root is the package `continuity`)."""
    parts = ["continuity", *path.relative_to(REPO).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _watchdog_imports(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, watchdog module) for each import of `path` that reaches the watchdog side other than the contract."""
    package = _module_of(path)
    if path.name != "__init__.py":
        package = package[:-1]
    bad: list[tuple[int, str]] = []
    text = path.read_text(encoding="utf-8") if source is None else source
    for line, module, names in imported_modules(text, package):
        if module == "continuity.watchdog" and names:  # `from continuity.watchdog import X`: X is the module
            bad.extend((line, f"continuity.watchdog.{name}") for name in names if name != "instance")
        elif module == "continuity" and "watchdog" in names:
            bad.append((line, "continuity.watchdog"))
        elif module == "continuity.watchdog" or (
            module.startswith("continuity.watchdog.") and module != CONTRACT
        ):  # `import continuity.watchdog`, a watchdog module, or a private module of the contract
            bad.append((line, module))
    return bad


def test_worker_imports_the_watchdog_only_through_the_instance_contract() -> None:
    """An AST walk over every .py in worker/: a watchdog module other than `continuity.watchdog.instance` (relative
    or absolute, anywhere in the file) fails, naming the file and line, unless EXCEPTIONS lists it for that file."""
    problems = []
    for path in sorted(WORKER.rglob("*.py")):
        relative = path.relative_to(WORKER).as_posix()
        for line, module in _watchdog_imports(path):
            allowed_files = EXCEPTIONS.get(module, ((), ""))[0]
            if relative not in allowed_files:
                problems.append(f"worker/{relative}:{line}: imports {module}; import from {CONTRACT} instead")
    assert not problems, "\n".join(problems)


def test_the_exceptions_are_each_still_needed() -> None:
    """Each listed exception is used by each file it names (a stale entry would hide a new import), with a reason."""
    for module, (files, reason) in EXCEPTIONS.items():
        assert reason
        for relative in files:
            used = {found for _line, found in _watchdog_imports(WORKER / relative)}
            assert module in used, f"worker/{relative} no longer imports {module}: drop it from EXCEPTIONS"


def test_the_walk_sees_relative_and_absolute_imports() -> None:
    """The check itself: relative imports reaching the watchdog, the contract's private modules, and
    `from continuity.watchdog import X` are all caught; the contract's own names are not."""
    source = (
        "from continuity.watchdog.instance import Home\n"
        "from continuity.watchdog.instance import control\n"
        "from ...watchdog import events\n"
        "from ...watchdog.instance._config import Config\n"
        "from continuity.watchdog import instance\n"
        "from continuity.watchdog import supervisor\n"
        "def later():\n"
        "    import continuity.watchdog.health\n"
    )
    found = _watchdog_imports(WORKER / "session" / "probe.py", source)
    assert found == [
        (3, "continuity.watchdog.events"),
        (4, "continuity.watchdog.instance._config"),
        (6, "continuity.watchdog.supervisor"),
        (8, "continuity.watchdog.health"),
    ]


def test_the_lazy_table_and_the_type_checking_imports_agree() -> None:
    """Each name the contract imports for mypy (`if TYPE_CHECKING:`) is in the lazy table `_EXPORTS` under the same
    module, and the other way round: a name added to one list only is caught here."""
    tree = ast.parse((WATCHDOG / "instance" / "__init__.py").read_text(encoding="utf-8"))
    typed: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for inner in node.body:
                if isinstance(inner, ast.ImportFrom) and inner.module:
                    typed.update({alias.name: inner.module for alias in inner.names})
    assert typed and typed == instance._WHERE
    assert sorted(instance.__all__) == sorted(["control", *typed])


def test_every_contract_name_resolves() -> None:
    """Each name `continuity.watchdog.instance` exports is found in its private module (the lazy map is complete)."""
    for name in instance.__all__:
        assert getattr(instance, name) is not None, name
    assert instance.control.ask is not None and "restart-browser" in instance.WORKER_ACTIONS


def _defines_click_commands(source: str) -> list[tuple[int, str]]:
    """(line, what) for each click command or group `source` defines: a decorator `@click.command`, `@click.group`,
    `@<group>.command` or `@<group>.group` (called or not), or a call of `click.Command`, `click.Group` or
    `<group>.add_command`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Attribute) and target.attr in ("command", "group"):
                    found.append((decorator.lineno, f"@{ast.unparse(target)}"))
                elif isinstance(target, ast.Name) and target.id in ("command", "group"):
                    found.append((decorator.lineno, f"@{target.id}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and (node.func.attr == "add_command" or ast.unparse(node.func) in ("click.Command", "click.Group"))
        ):
            found.append((node.lineno, f"{ast.unparse(node.func)}(...)"))
    return found


def test_the_command_line_lives_in_one_place() -> None:
    """An AST walk over watchdog/, worker/ and devtools/: only the modules of watchdog/cli/ define click commands
    or groups (the thin commands: parse options, call the library, turn its errors into one line)."""
    problems = []
    for path in sorted([*WATCHDOG.rglob("*.py"), *WORKER.rglob("*.py"), *DEVTOOLS.rglob("*.py")]):
        if CLI in path.parents:
            continue
        for line, what in _defines_click_commands(path.read_text(encoding="utf-8")):
            problems.append(f"{path.relative_to(REPO).as_posix()}:{line}: {what}: commands belong in watchdog/cli/")
    assert not problems, "\n".join(problems)
    assert _defines_click_commands((CLI / "tokens.py").read_text(encoding="utf-8")), "the walk sees no command"


def _top_level_imports(path: Path) -> list[str]:
    """Each module (and `module.name`) imported when `path` is imported: not in a function's body, nor under
    `if TYPE_CHECKING:`."""
    package = _module_of(path) if path.name == "__init__.py" else _module_of(path)[:-1]
    found: list[str] = []

    def visit(nodes: list[ast.AST]) -> None:
        for node in nodes:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import | ast.ImportFrom):
                for _line, module, names in imported_modules(ast.unparse(node), package):
                    found.append(module)
                    found.extend(f"{module}.{name}" for name in names)
                continue
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    visit([child for child in children if isinstance(child, ast.AST)])

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


def test_command_modules_load_the_worker_and_devtools_only_when_a_command_runs() -> None:
    """`continuity --help` and `continuity start` stay free of selenium and of the worker: no module of watchdog/cli/
    imports `continuity.worker` when it is loaded, and only dev.py loads devtools (the simulator's modes and variants,
    for its options' help)."""
    problems = []
    for path in sorted(CLI.glob("*.py")):
        for module in _top_level_imports(path):
            devtools_ok = path.name == "dev.py" and module.startswith(
                ("continuity.devtools.simulator._modes", "continuity.devtools.simulator._variants")
            )
            if module.startswith("continuity.worker") or (module.startswith("continuity.devtools") and not devtools_ok):
                problems.append(f"watchdog/cli/{path.name}: imports {module} at load; import it inside the command")
    assert not problems, "\n".join(problems)


def test_nothing_but_the_dev_commands_imports_devtools() -> None:
    """The simulator, the rig and the demo (continuity.devtools) are never imported by the worker, nor by the
    watchdog but for `continuity simulator` and `continuity demo` (watchdog/cli/dev.py)."""
    problems = []
    for path in sorted([*WORKER.rglob("*.py"), *WATCHDOG.rglob("*.py")]):
        if path == CLI / "dev.py":
            continue
        package = _module_of(path)
        if path.name != "__init__.py":
            package = package[:-1]
        for line, module, names in imported_modules(path.read_text(encoding="utf-8"), package):
            if (
                module == "continuity.devtools"
                or module.startswith("continuity.devtools.")
                or (module == "continuity" and "devtools" in names)
            ):
                problems.append(f"{path.relative_to(REPO).as_posix()}:{line}: imports {module}")
    assert not problems, "\n".join(problems)


_ENV_NAME = re.compile(r"^CONTINUITY_[A-Z_]+$")
# worker/_early.py writes the first heartbeat before anything is imported (not even the contract).
ENV_SPELLED_OUT = {"worker/_early.py": {instance.HEARTBEAT_ENV}}


def test_environment_variable_names_are_defined_once() -> None:
    """No module of watchdog/, worker/ or devtools/ spells out a CONTINUITY_* variable name as a string of its own
    but the contract's _contract.py (and worker/_early.py, which says why); _early's is the contract's HEARTBEAT_ENV."""
    defined = {getattr(instance, name) for name in instance.__all__ if name.endswith("_ENV") and name != "API_ENV"}
    problems = []
    for path in sorted([*WATCHDOG.rglob("*.py"), *WORKER.rglob("*.py"), *DEVTOOLS.rglob("*.py")]):
        relative = path.relative_to(REPO).as_posix()
        if relative == "watchdog/instance/_contract.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _ENV_NAME.match(node.value):
                if node.value not in ENV_SPELLED_OUT.get(relative, set()):
                    problems.append(f"{relative}:{node.lineno}: {node.value!r}: use the contract's name for it")
                assert node.value in defined, f"{relative}:{node.lineno}: {node.value} is not in the contract"
    assert not problems, "\n".join(problems)


# What an idle watchdog must not load (each costs its RSS; the idle goal is < 18 MB): the HTTP server and HMAC
# come with the first API request, dataclasses with the API app or the alerts, logging.handlers never.
NOT_WHEN_IDLE = ("http.server", "hmac", "dataclasses", "logging.handlers")


def test_an_idle_watchdog_loads_none_of_the_heavy_modules(home: Home) -> None:
    """The real watchdog process (`continuity start`, exec'd), its API listening but never asked, a worker
    beating: after several wakeups its sys.modules (written by the watchdog itself, $CONTINUITY_DEBUG_MODULES)
    holds none of NOT_WHEN_IDLE."""
    dump = home.root / "modules.txt"
    write_config(home, toy="normal")
    with home.config_file.open("a", encoding="utf-8") as handle:
        handle.write("[api]\nport = 0\n")
    proc = start_watchdog(home, env={MODULES_DUMP_ENV: str(dump)})
    try:
        wait_for_event(home, "api_started", timeout=15)
        wait_for(lambda: [e for e in events(home, "state") if e["new"] == "running"], timeout=15, what="running")
        time.sleep(3.0)  # several heartbeats and wakeups (heartbeat_timeout 1 s) while running
        wait_for(dump.exists, timeout=10, what="the module list")
        written = dump.stat().st_mtime
        wait_for(lambda: dump.stat().st_mtime > written, timeout=10, what="a later module list")
        loaded = set(dump.read_text(encoding="utf-8").split())
    finally:
        stop_watchdog(proc)
    assert "continuity.watchdog.supervisor" in loaded and "continuity.watchdog.api_server" in loaded
    assert not [name for name in NOT_WHEN_IDLE if name in loaded], sorted(loaded)
    assert "continuity.watchdog.api" not in loaded  # the API app: only at the first request
