"""The repository layout that DESIGN.md fixes, and the trap in it."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
