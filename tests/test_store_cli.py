"""`continuity tokens ...` and `continuity send` through the real root command group."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from click.testing import CliRunner, Result

from continuity.watchdog.cli import cli
from continuity.watchdog.instance import Home
from continuity.worker.store import Outbox, TokenStore


def run(home: Home, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--home", str(home.root), *args], catch_exceptions=False)


def test_add_list_remove(home: Home) -> None:
    """tokens add/list --json/remove change the store and print JSON records each with "id"."""
    assert (
        run(home, "tokens", "add", "pepe", "--symbol", "PEPE", "--chain", "eth", "--data", '{"mc": 5}').exit_code == 0
    )
    assert run(home, "tokens", "add", "doge").exit_code == 0
    listed = json.loads(run(home, "tokens", "list", "--json").output)
    assert [r["id"] for r in listed] == ["pepe", "doge"] and listed[0]["mc"] == 5 and listed[0]["chain"] == "eth"
    assert "pepe\tPEPE\teth" in run(home, "tokens", "list").output
    assert run(home, "tokens", "remove", "pepe").exit_code == 0
    assert [r["id"] for r in json.loads(run(home, "tokens", "list", "--json").output)] == ["doge"]


def test_cli_errors_are_one_clear_line(home: Home) -> None:
    """Duplicate add, unknown remove and bad --data exit non-zero with a message and change nothing."""
    run(home, "tokens", "add", "a")
    duplicate = run(home, "tokens", "add", "a")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    missing = run(home, "tokens", "remove", "nope")
    assert missing.exit_code == 1 and "no token 'nope'" in missing.output
    bad = run(home, "tokens", "add", "b", "--data", "{oops")
    assert bad.exit_code == 2 and "not valid JSON" in bad.output
    assert [r["id"] for r in json.loads(run(home, "tokens", "list", "--json").output)] == ["a"]


def test_import_the_seed_formats_and_export(home: Home, tmp_path: Path) -> None:
    """import reads a list, a dict keyed by id and JSON lines, keeping unknown fields; export round-trips."""
    files = {
        "list.json": json.dumps([{"id": "a", "symbol": "A", "custom": {"x": 1}}]),
        "dict.json": json.dumps({"b": {"symbol": "B"}}),
        "lines.jsonl": '{"id": "c"}\n{"id": "d", "note": "n"}\n',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        assert run(home, "tokens", "import", str(tmp_path / name)).exit_code == 0
    exported = run(home, "tokens", "export").output
    records = {r["id"]: r for r in json.loads(exported)}
    assert set(records) == {"a", "b", "c", "d"} and records["a"]["custom"] == {"x": 1} and records["d"]["note"] == "n"
    (tmp_path / "export.json").write_text(exported)
    other = Home(tmp_path / "other")
    assert run(other, "tokens", "import", str(tmp_path / "export.json")).output.strip() == "imported 4 token(s)"


def test_bad_import_file_changes_nothing(home: Home, tmp_path: Path) -> None:
    """Invalid JSON, duplicate ids and non-UTF-8 files exit 1 with the reason; the store keeps what it had."""
    run(home, "tokens", "add", "keep")
    cases = {
        "bad.json": b'[{"id": "x"},',
        "dup.json": b'[{"id": "x"}, {"id": "x"}]',
        "latin1.json": b'[{"id": "\xe9"}]',
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        result = run(home, "tokens", "import", str(tmp_path / name))
        assert result.exit_code == 1 and "Error:" in result.output, name
    with TokenStore.open(home) as store:
        assert store.ids() == ["keep"]


def test_backup_command_writes_a_verified_backup(home: Home) -> None:
    """tokens backup prints the path of a new backup in data/backups/."""
    run(home, "tokens", "add", "a")
    path = Path(run(home, "tokens", "backup").output.strip())
    assert path.parent == home.data_dir / "backups"
    assert json.loads(gzip.decompress(path.read_bytes()))["tokens"][0]["id"] == "a"


def test_send_validates_and_enqueues(home: Home) -> None:
    """send normalizes the phone and queues once per dedupe key; a bad phone is refused."""
    assert run(home, "send", "+1 555-123-4567", "hello", "--dedupe-key", "k").exit_code == 0
    again = run(home, "send", "15551234567", "hello", "--dedupe-key", "k")
    assert again.exit_code == 0 and "not queued again" in again.output
    bad = run(home, "send", "12ab", "hello")
    assert bad.exit_code == 1 and "country code" in bad.output
    with Outbox.open(home) as box:
        messages = box.list()
    assert [(m["phone"], m["text"], m["state"]) for m in messages] == [("15551234567", "hello", "pending")]
