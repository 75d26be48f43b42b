"""The repository layout that DESIGN.md fixes, and the trap in it."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_STACK_LINES = 300


def test_constructs_folder_has_no_init_py_so_the_library_stays_importable() -> None:
    # An __init__.py would shadow the `constructs` pip package and break `import aws_cdk`.
    assert not (ROOT / "constructs" / "__init__.py").exists()


def test_constructs_folder_never_shadows_a_module_of_the_pip_package() -> None:
    import constructs

    library_dir = next(Path(p) for p in constructs.__path__ if "site-packages" in p)
    ours = {p.stem for p in (ROOT / "constructs").glob("*.py")}
    theirs = {p.stem for p in library_dir.iterdir()}
    assert not ours & theirs


def test_shared_constructs_import_beside_the_library() -> None:
    from constructs import Construct
    from constructs.agent_cluster import AgentCluster
    from constructs.agent_network import AgentNetwork

    assert issubclass(AgentNetwork, Construct)
    assert issubclass(AgentCluster, Construct)


def test_top_level_layout_is_present() -> None:
    for name in (
        "app.py",
        "cdk.json",
        "requirements.txt",
        "requirements-dev.txt",
        "stacks",
        "constructs",
        "lambda_src",
        "tests",
        "agent_runner",
        "Makefile",
        "README.md",
        ".ci/run",
    ):
        assert (ROOT / name).exists(), name


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_constructs_import_nothing_from_stacks() -> None:
    # Dependencies point one way: app.py -> stacks -> constructs -> aws_cdk.
    modules = sorted((ROOT / "constructs").glob("*.py"))
    assert len(modules) >= 10
    offenders = {
        path.name: sorted(m for m in _imported_modules(path) if m.split(".")[0] == "stacks")
        for path in modules
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_import_scan_sees_a_stacks_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import json\nfrom stacks.config import PlatformConfig\nimport stacks.nag\n")
    assert {"stacks.config", "stacks.nag"} <= _imported_modules(sample)


@pytest.mark.parametrize("module", ["control_plane_stack.py", "customer_onboarding_stack.py"])
def test_stacks_are_wiring_of_at_most_300_lines(module: str) -> None:
    # A stack longer than this is doing a construct's work (STYLE.md).
    lines = len((ROOT / "stacks" / module).read_text().splitlines())
    assert lines <= MAX_STACK_LINES, f"stacks/{module} has {lines} lines"
