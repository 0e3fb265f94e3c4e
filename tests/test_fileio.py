"""benchmark.fileio: a directory (or file) appears complete or not at all."""

import os

import pytest

from benchmark.fileio import replace_dir_atomic


def _tree(d):
    return {str(p.relative_to(d)): p.read_text() for p in sorted(d.rglob("*")) if p.is_file()}


def _build(files):
    def build(tmp):
        assert tmp.is_dir() and not any(tmp.iterdir())  # fresh and empty
        for name, text in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)
        return sorted(files)

    return build


def test_replace_dir_atomic_creates_and_replaces(tmp_path):
    out = tmp_path / "parent" / "out"
    assert replace_dir_atomic(out, _build({"a.txt": "1", "sub/b.txt": "2"})) == ["a.txt", "sub/b.txt"]
    assert _tree(out) == {"a.txt": "1", "sub/b.txt": "2"}

    assert replace_dir_atomic(out, _build({"c.txt": "3"})) == ["c.txt"]
    assert _tree(out) == {"c.txt": "3"}  # the old contents are gone, not merged
    assert os.listdir(out.parent) == ["out"]  # no temp or old directory left


def test_replace_dir_atomic_failure_leaves_old_dir_untouched(tmp_path):
    out = tmp_path / "out"
    replace_dir_atomic(out, _build({"a.txt": "old"}))

    def failing(tmp):
        (tmp / "a.txt").write_text("new")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        replace_dir_atomic(out, failing)
    assert _tree(out) == {"a.txt": "old"}
    assert os.listdir(tmp_path) == ["out"]

    with pytest.raises(KeyboardInterrupt):  # any exception, not only Exception
        replace_dir_atomic(tmp_path / "new", lambda tmp: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert os.listdir(tmp_path) == ["out"]


def test_replace_dir_atomic_replaces_a_file_or_link(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("k")
    link = tmp_path / "out"
    link.symlink_to(target)
    replace_dir_atomic(link, _build({"x.txt": "x"}))
    assert not link.is_symlink() and _tree(link) == {"x.txt": "x"}
    assert _tree(target) == {"keep.txt": "k"}  # the link is replaced, its target left alone

    f = tmp_path / "f"
    f.write_text("a file")
    replace_dir_atomic(f, _build({"y.txt": "y"}))
    assert _tree(f) == {"y.txt": "y"}
    assert sorted(os.listdir(tmp_path)) == ["elsewhere", "f", "out"]
