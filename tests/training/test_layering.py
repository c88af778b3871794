"""The layers stay apart: the training library `dlrm` never reaches the app (`runner`) or Hydra,
and takes the typed config (dlrm/config.py's dataclasses, made once at the app's edge by
runner/compose.py `typed`), never an untyped one."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from harness import REPO

DLRM = REPO / "dlrm"
# The `python -m dlrm.train` command's door: its name is the one users type, and it starts the app.
DOOR = DLRM / "train.py"
MODULES = sorted(p for p in DLRM.rglob("*.py") if p != DOOR)
UNTYPED = re.compile(r"\b(Any|DictConfig|ListConfig)\b")


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _imports(tree: ast.AST) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append(node.module)
    return out


def test_the_modules_are_found():
    assert DOOR.is_file() and len(MODULES) > 20 and DLRM / "loop.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_the_library_never_imports_the_app_or_hydra(path):
    bad = [m for m in _imports(ast.parse(path.read_text())) if m.split(".")[0] in ("runner", "hydra")]
    assert not bad, f"{_rel(path)} imports {bad}: only {_rel(DOOR)} may reach the app"


def _config_params(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
                if arg.arg == "cfg" or arg.arg.endswith("_cfg"):
                    yield node, arg


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_config_parameters_are_typed_with_the_schema(path):
    bad = []
    for fn, arg in _config_params(ast.parse(path.read_text())):
        annotation = ast.unparse(arg.annotation) if arg.annotation is not None else None
        if annotation is None or UNTYPED.search(annotation):
            bad.append(f"{fn.name}({arg.arg}: {annotation})")
    assert not bad, (f"{_rel(path)}: {bad}: annotate config parameters with dlrm/config.py's dataclasses "
                     f"(the app hands the library typed objects)")


def test_the_checks_see_a_regression():
    """The two checks above fail on the code they forbid."""
    tree = ast.parse("from runner.compose import compose\nimport hydra\n"
                     "def f(cfg: Any, data_cfg: 'DictConfig', model_cfg, trainer_cfg: TrainerConfig): ...")
    assert [m for m in _imports(tree) if m.split(".")[0] in ("runner", "hydra")] == ["runner.compose", "hydra"]
    flagged = [arg.arg for _, arg in _config_params(tree)
               if arg.annotation is None or UNTYPED.search(ast.unparse(arg.annotation))]
    assert flagged == ["cfg", "data_cfg", "model_cfg"]
