"""Each DVC stage depends on exactly the package modules it imports: the static import closure
of ``python -m benchmark <stage>`` (every ``import`` statement, also inside functions, plus the
``__init__`` of every package on the way) equals the ``benchmark/`` entries of the stage's
``deps`` in dvc.yaml (directories expanded). Package data files a module reads are listed beside
it and checked to exist."""

import ast
from pathlib import Path
from typing import Dict, Iterable, Set

import pytest
from ruamel.yaml import YAML

from benchmark.cli import STAGES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "benchmark"


def module_file(name: str) -> Path:
    """The file of module ``name`` (``benchmark.x.y``): ``x/y.py`` or ``x/y/__init__.py``; None if neither."""
    rel = Path(*name.split("."))
    for p in (ROOT / rel.with_suffix(".py"), ROOT / rel / "__init__.py"):
        if p.is_file():
            return p
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported(path: Path) -> Set[str]:
    """The ``benchmark`` modules one file imports (absolute and relative), anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return {m for m in out if m.split(".")[0] == "benchmark" and module_file(m) is not None}


def closure(entry_modules: Iterable[str]) -> Set[Path]:
    """Every file of the package that importing ``entry_modules`` executes (statically)."""
    todo = list(entry_modules)
    seen: Set[Path] = set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # parents' __init__ run first
            f = module_file(".".join(parts[:i]))
            if f is not None and f not in seen:
                seen.add(f)
                todo.extend(imported(f))
    return seen


def stage_closure(stage: str) -> Set[str]:
    files = closure(["benchmark.__main__", "benchmark.cli", STAGES[stage][0]])
    return {str(f.relative_to(ROOT)) for f in files}


def dvc_code_deps() -> Dict[str, Set[str]]:
    """dvc.yaml stage name -> the ``benchmark/`` .py files among its deps (directories expanded)."""
    stages = YAML(typ="safe").load((ROOT / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, st in stages.items():
        body = st.get("do", st)
        files = set()
        for dep in body.get("deps", []):
            p = ROOT / dep
            if dep.startswith("benchmark/") and "${" not in dep:
                assert p.exists(), f"dvc.yaml stage {name}: dependency {dep} does not exist"
                files |= {str(f.relative_to(ROOT)) for f in p.rglob("*.py")} if p.is_dir() else ({dep} if dep.endswith(".py") else set())
        out[name] = files
    return out


def _cli_stage(dvc_stage: str) -> str:
    cmd = YAML(typ="safe").load((ROOT / "dvc.yaml").read_text())["stages"][dvc_stage]
    cmd = cmd.get("do", cmd)["cmd"]
    words = cmd.split()
    return words[words.index("benchmark") + 1]


@pytest.mark.parametrize("dvc_stage", sorted(dvc_code_deps()))
def test_stage_deps_are_the_import_closure(dvc_stage):
    expected = stage_closure(_cli_stage(dvc_stage))
    listed = dvc_code_deps()[dvc_stage]
    assert not expected - listed, f"{dvc_stage}: dvc.yaml misses {sorted(expected - listed)}"
    assert not listed - expected, f"{dvc_stage}: dvc.yaml lists modules the stage never imports: {sorted(listed - expected)}"


def test_learned_code_is_not_a_classical_dependency():
    classical = stage_closure("evaluate")
    assert "benchmark/codecs/learned.py" not in classical and "benchmark/models/vae.py" not in classical
    assert "benchmark/codecs/learned.py" in stage_closure("evaluate-learned")


def test_every_cli_stage_has_a_module():
    for stage, (module, _) in STAGES.items():
        assert module_file(module) is not None, f"stage {stage}: no module {module}"
