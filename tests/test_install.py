"""The environment `make install` builds: requirements.lock and the torchvision start-up hook.

The subprocess tests run ``sys.executable`` (the project's venv when run as ``make test``) from an
empty directory, so they see the installed environment, not the working tree, exactly as
CompressAI's own CLIs or a plain ``python -c`` would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10 (tomli is in requirements.lock there)
    import tomli as tomllib

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PTH = "compression_benchmark_torchvision.pth"
ROOT_VIA = re.compile(r"^compression-benchmark \(pyproject\.toml(:\w+)?\)$")
# The CUDA runtime of PyPI's Linux torch wheel: torch pins it itself; a CPU torch must not get it.
CUDA_STACK = re.compile(r"^(nvidia-.*|cuda-.*|triton)$")


def _run(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    return subprocess.run(
        [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
    )


def _lock_entries() -> list[tuple[str, str, str | None, list[str]]]:
    """(canonical name, version, marker or None, via names) per pinned line of requirements.lock."""
    entries: list[tuple[str, str, str | None, list[str]]] = []
    in_via = False
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            req, _, marker = line.partition(";")
            name, _, version = req.strip().partition("==")
            assert version, f"not an exact pin: {line!r}"
            entries.append((canonicalize_name(name), version, marker.strip() or None, []))
            in_via = False
        elif line.strip() == "# via":
            in_via = True
        elif line.startswith("    # via "):
            entries[-1][3].append(line.removeprefix("    # via ").strip())
        elif in_via and line.startswith("    #   "):
            entries[-1][3].append(line.removeprefix("    #   ").strip())
        else:
            in_via = False
    return entries


def _pyproject_direct() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = list(project["project"]["dependencies"])
    reqs += project["project"]["optional-dependencies"]["test"]
    reqs += project["project"]["optional-dependencies"]["ray"]  # locked too: CI runs the Ray executor's tests
    reqs += project.get("dependency-groups", {}).get("build", [])
    return {canonicalize_name(Requirement(r).name) for r in reqs}


# ---- requirements.lock -----------------------------------------------------------------------


def test_lock_has_no_local_version_labels_and_pins_the_torch_stack():
    entries = _lock_entries()
    assert entries
    assert not [(n, v) for n, v, _, _ in entries if "+" in v]
    pins = {n: v for n, v, m, _ in entries if m is None}
    assert pins["torch"] == "2.13.0"
    assert pins["torchvision"] == "0.28.0"
    assert pins["compressai"] == "1.2.8"
    assert Version(pins["numpy"]) < Version("2")
    assert "hatchling" in pins  # `make install` builds the project without build isolation
    assert not [n for n, *_ in entries if CUDA_STACK.match(n)]


def test_lock_pins_only_what_pyproject_needs():
    """Every pin is a dependency (direct or transitive) of pyproject's; the direct ones match it."""
    entries = _lock_entries()
    names = {n for n, *_ in entries}
    direct = {n for n, _, _, via in entries if any(ROOT_VIA.match(v) for v in via)}
    wanted = _pyproject_direct()
    assert direct == wanted, f"lock only: {direct - wanted}; pyproject only: {wanted - direct} (run `make lock`)"
    parents: dict[str, set[str]] = {}
    for n, _, _, via in entries:
        assert via, f"{n} has no '# via' annotation"
        parents.setdefault(n, set()).update(
            "<root>" if ROOT_VIA.match(v) else canonicalize_name(v) for v in via
        )
    unknown = {p for ps in parents.values() for p in ps} - names - {"<root>"}
    assert not unknown, f"'# via' names packages that are not pinned: {unknown}"
    reached = {"<root>"}
    while True:
        more = {n for n, ps in parents.items() if n not in reached and ps & reached}
        if not more:
            break
        reached |= more
    assert names <= reached, f"pinned but required by nothing of ours: {names - reached}"


def test_lock_header_says_how_to_regenerate():
    head = LOCK.read_text().split("\n", 12)[:12]
    assert any("make lock" in line for line in head)
    assert any(line.startswith("#    uv pip compile pyproject.toml") for line in head)
    assert re.search(r"^lock:", (ROOT / "Makefile").read_text(), re.M)


def test_installed_versions_match_the_lock():
    """The running environment is what `make install` makes of requirements.lock."""
    wrong = []
    for name, version, marker, _ in _lock_entries():
        if marker and not Marker(marker).evaluate():
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name}=={version} not installed")
            continue
        if Version(installed).public != Version(version).public:  # torch 2.13.0+cpu is 2.13.0
            wrong.append(f"{name}=={version}, installed {installed}")
    assert not wrong, "run `make install` (the venv is older than requirements.lock):\n" + "\n".join(wrong)


# ---- the torchvision hook: every Python process of the venv ------------------------------------

HOOK_MARK = "compression-benchmark torchvision hook"
HAS_HOOK = f"any(getattr(f, 'MARK', None) == {HOOK_MARK!r} for f in sys.meta_path)"


def test_hook_is_installed_and_current():
    purelib = Path(sysconfig.get_paths()["purelib"])
    assert (purelib / PTH).is_file()
    copy = purelib / "_compression_benchmark_torchvision.py"
    source = ROOT / "benchmark" / "_torchvision_compat.py"
    assert copy.read_text() == source.read_text(), "stale copy: run `make install`"


def test_startup_installs_the_hook_without_importing_torch_or_benchmark(tmp_path):
    code = (
        "import sys; "
        "assert 'torch' not in sys.modules and 'torchvision' not in sys.modules, 'torch at start-up'; "
        f"assert {HAS_HOOK}, 'no hook'; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'benchmark'], 'benchmark at start-up'"
    )
    out = _run(tmp_path, "-c", code)
    assert out.returncode == 0, out.stderr
    assert not out.stderr  # site.py reports a failing .pth line on stderr


def test_plain_import_of_lpips_and_torchvision(tmp_path):
    code = f"import sys, lpips, torchvision, torchvision.transforms; assert not {HAS_HOOK}"
    out = _run(tmp_path, "-c", code)
    assert out.returncode == 0, out.stderr


def test_hook_leaves_the_benchmark_name_alone(tmp_path):
    """A ``benchmark`` package in the current directory (e.g. a scratch copy of the repo) wins."""
    (tmp_path / "benchmark").mkdir()
    (tmp_path / "benchmark" / "__init__.py").write_text("")
    out = _run(tmp_path, "-c", "import torchvision, benchmark; print(benchmark.__file__)")
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).parent == tmp_path / "benchmark"


@pytest.mark.parametrize("module", ["compressai.utils.eval_model", "compressai.utils.plot"])
def test_compressai_cli_help(tmp_path, module):
    out = _run(tmp_path, "-m", module, "--help")
    assert out.returncode == 0, out.stderr
    assert "usage" in out.stdout.lower()
