"""Store damage soak, black box: a real watchdog + worker (WhatsApp off) while `continuity tokens add` runs every
`--add-every` seconds and data/tracked_tokens.json is cut to half its length plus garbage every `--damage-every`
seconds (as a bad edit, a sync tool or a disk error leaves it), and again right after each restore.

Then every acknowledged token (its `tokens add` exited 0) must be listed, and no restore may report a gap.
Exit 0 only then.

Usage: python scripts/store_damage_soak.py --minutes 10 [--add-every 1.5] [--damage-every 12] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from continuity.devtools.rig import Rig


def damage(path: Path) -> bool:
    """Cut `path` to half its length plus garbage, in place; False when it does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    path.write_bytes(data[: max(1, len(data) // 2)] + b"\x00garbage")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--add-every", type=float, default=1.5, help="seconds between `tokens add` calls")
    parser.add_argument("--damage-every", type=float, default=12.0, help="seconds between damages")
    parser.add_argument("--keep", action="store_true", help="keep the instance directory")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    root = Path(tempfile.mkdtemp(prefix="continuity-damage-"))
    print(f"damage soak: {args.minutes:g} min, home {root}")
    acked: list[str] = []
    refused = damages = 0
    with Rig(root, recipients=[], settings="") as rig:
        text = rig.home.config_file.read_text().replace("[whatsapp]\n", "[whatsapp]\nenabled = false\n")
        rig.home.config_file.write_text(text)
        rig.start()
        rig.wait(lambda: rig.worker_pid(), timeout_s=60, what="worker heartbeat")
        snapshot = rig.home.data_dir / "tracked_tokens.json"
        deadline = time.monotonic() + args.minutes * 60
        next_damage = time.monotonic() + args.damage_every
        restores_seen = 0
        while time.monotonic() < deadline:
            ident = f"t{len(acked) + refused:05d}"
            if rig.cli("tokens", "add", ident, "--symbol", "S", "--chain", "sol").returncode == 0:
                acked.append(ident)
            else:
                refused += 1
            restores = len(rig.events("store_restored"))
            if restores > restores_seen:  # damage the snapshot a restore just wrote, before any backup holds it
                restores_seen = restores
                damages += damage(snapshot)
            if time.monotonic() >= next_damage:
                damages += damage(snapshot)
                next_damage += args.damage_every
            time.sleep(args.add_every)
        listed = json.loads(rig.cli("tokens", "list", "--json").stdout or "[]")
        restores = rig.events("store_restored")
        gaps = rig.events("store_restore_incomplete")
        code = rig.stop()
    lost = sorted(set(acked) - {record["id"] for record in listed})
    print(
        f"tokens acknowledged: {len(acked)}, refused: {refused}, damages: {damages}, restores: {len(restores)}, "
        f"restores with a gap: {len(gaps)}, lost: {len(lost)}"
    )
    failures = []
    if lost:
        failures.append(f"{len(lost)} acknowledged tokens LOST, e.g. {lost[:5]}")
    if gaps:
        failures.append(
            f"{len(gaps)} restores reported missing generations: {[g['missing_generations'] for g in gaps]}"
        )
    if damages and not restores:
        failures.append("the store was damaged but never restored")
    if code != 0:
        failures.append(f"watchdog exited {code}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    if failures:
        print("damage soak FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("damage soak passed: no acknowledged token lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
