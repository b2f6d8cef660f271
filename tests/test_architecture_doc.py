"""docs/ARCHITECTURE.md matches the tree: its "Where things live" page names every module, and no path or module
name in it (or in the README) points at something that no longer exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "ARCHITECTURE.md"
PACKAGES = ("watchdog", "worker", "devtools")
PATH_RE = re.compile(r"(?<![\w./-])((?:watchdog|worker|devtools|tests|scripts|deploy|docs)/[\w./-]*\w/?)")
MODULE_RE = re.compile(r"`([\w]+\.py)`")


def where_things_live(text: str) -> str:
    """The "Where things live" section of the document."""
    start = text.index("## Where things live")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def modules(root: Path) -> list[Path]:
    """Every module of the packages but __init__.py and __main__.py."""
    found = [p for package in PACKAGES for p in sorted((root / package).rglob("*.py"))]
    return [p for p in found if p.name not in ("__init__.py", "__main__.py")]


def missing_modules(page: str, files: list[Path]) -> list[str]:
    """The modules whose file name the page does not mention (as `name.py`)."""
    named = set(MODULE_RE.findall(page))
    return [str(p) for p in files if p.name not in named]


def dead_references(text: str, root: Path, files: list[Path]) -> list[str]:
    """Paths (`worker/session/page.py`, `deploy/kubernetes/`) that do not exist under root, and `name.py` that no
    module of the packages is called."""
    names = {p.name for p in files}
    dead = [path for path in PATH_RE.findall(text) if not (root / path.rstrip("/")).exists() and "*" not in path]
    dead += [name for name in MODULE_RE.findall(text) if name not in names and not list(root.glob(f"*/**/{name}"))]
    return sorted(set(dead))


def test_the_page_names_every_module() -> None:
    """Each module of watchdog/, worker/ and devtools/ is named on the "Where things live" page."""
    files = modules(REPO)
    assert len(files) > 100
    assert missing_modules(where_things_live(DOC.read_text(encoding="utf-8")), files) == []


def test_no_path_in_the_docs_is_dead() -> None:
    """Every repository path and module name in ARCHITECTURE.md and the README exists in the tree."""
    files = modules(REPO)
    for doc in (DOC, REPO / "README.md"):
        assert dead_references(doc.read_text(encoding="utf-8"), REPO, files) == [], doc.name


def test_the_checks_see_a_new_module_and_a_removed_one(tmp_path: Path) -> None:
    """A module the page does not name, and a path or module name that no longer exists, are both reported."""
    (tmp_path / "worker" / "session").mkdir(parents=True)
    for package in PACKAGES:
        (tmp_path / package).mkdir(exist_ok=True)
    (tmp_path / "worker" / "loop.py").write_text("")
    (tmp_path / "worker" / "session" / "page.py").write_text("")
    page = "## Where things live\n- the loop: `loop.py`\n## Next\n`page.py`\n"
    files = modules(tmp_path)
    assert missing_modules(where_things_live(page), files) == [str(tmp_path / "worker" / "session" / "page.py")]
    text = "see worker/session/page.py, worker/session/gone.py, `loop.py` and `removed.py`; deploy/kubernetes/"
    assert dead_references(text, tmp_path, files) == ["deploy/kubernetes/", "removed.py", "worker/session/gone.py"]
