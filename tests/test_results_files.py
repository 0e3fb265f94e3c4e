"""The committed results are portable: no file under results/ names a path of the machine that
wrote it, and every report README links only to files that exist beside it."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ABSOLUTE = re.compile(rb"(/work/|/root/|/home/|/Users/|/tmp/|/private/var/)")
"""Starts of absolute paths on the machines that make results (Linux, macOS)."""
WINDOWS = re.compile(rb"\b[A-Za-z]:\\")
"""A Windows drive (``C:\\``), looked for in text files only (random bytes of a PNG match it)."""


def committed(under: str):
    """Files under ``under`` that git tracks (the working tree when git is not available)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", under], cwd=ROOT, capture_output=True, check=True).stdout
        files = [ROOT / p.decode() for p in out.split(b"\0") if p]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in (ROOT / under).rglob("*") if p.is_file()]
    return [p for p in files if p.is_file()]


def markdown_links(text: str):
    """Targets of ``[text](target)`` and ``![alt](target)`` links that are not URLs or anchors."""
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"^([a-z]+:|#)", t)]


def test_no_committed_result_contains_an_absolute_path():
    files = committed("results")
    assert files, "no committed results found"
    found = []
    for p in files:
        data = p.read_bytes()
        text = b"\0" not in data and p.suffix.lower() not in (".png", ".pdf")
        m = ABSOLUTE.search(data) or (WINDOWS.search(data) if text else None)
        if m:
            found.append(f"{p.relative_to(ROOT)}: ...{data[max(0, m.start() - 40):m.end() + 40]!r}...")
    assert not found, "machine paths in committed results (fix the code that writes them):\n" + "\n".join(found)


@pytest.mark.parametrize("readme", [p for p in committed("results") if p.name == "README.md"], ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_report_readme_links_only_existing_files(readme):
    assert_links_exist(readme)


def assert_links_exist(readme: Path) -> None:
    """Every relative link of ``readme`` names a file or folder beside it, inside its folder."""
    links = markdown_links(readme.read_text(encoding="utf-8"))
    assert links, f"{readme}: no links"
    for target in links:
        assert not target.startswith("/") and ".." not in Path(target).parts, f"{readme}: link {target} leaves its folder"
        assert (readme.parent / target).exists(), f"{readme}: link {target} names no file"
