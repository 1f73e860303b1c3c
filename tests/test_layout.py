"""The repository's layering and the user's top-level layout."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_lib_never_imports_the_data_folder():
    offenders = [f"{p.relative_to(ROOT)} imports {m}"
                 for p in sorted((ROOT / "lib").rglob("*.py"))
                 for m in _imported_modules(p) if m == "data" or m.startswith("data.")]
    assert not offenders, offenders


def test_the_scanner_sees_a_data_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from data.build import x\n")
    assert list(_imported_modules(probe)) == ["data.build"]


def test_user_layout_folders_exist_with_a_readme():
    for folder in ("main", "lib", "data", "asset", "smplpytorch", "pretrained", "experiment",
                   "tests"):
        assert (ROOT / folder).is_dir(), folder
    for folder in ("smplpytorch", "pretrained", "experiment", "data/Human36M"):
        text = (ROOT / folder / "README.md").read_text()
        assert len(text.split()) > 30, folder
    assert (ROOT / "smplpytorch/smplpytorch/native/models").is_dir()
