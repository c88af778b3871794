"""The layout of analysis/ (house-keeping): contract names from rundir, no import circles,
no oversized modules, and a synthetic-run-dir writer that lives with the tests (tests/), out
of the analysis, and counts a model by the model's own formula."""
import ast
from pathlib import Path

import rundir

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "analysis"
MAX_LINES = 400


def _imports(path: Path) -> set[str]:
    """analysis.* modules imported by `path`, at any depth (lazy imports count)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "analysis":
                out |= {f"analysis.{a.name}" for a in node.names}
            elif node.module.startswith("analysis."):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("analysis.")}
    return out


def test_no_two_modules_import_each_other_directly_or_through_others():
    graph = {f"analysis.{p.stem}": _imports(p) for p in PACKAGE.glob("*.py")}
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_pipeline_only_computes_and_report_does_not_import_it():
    assert "analysis.report" not in _imports(PACKAGE / "pipeline.py")
    assert "analysis.plots" not in _imports(PACKAGE / "pipeline.py")
    assert "analysis.pipeline" not in _imports(PACKAGE / "report.py")


def test_no_module_is_longer_than_400_lines():
    long = {p.name: n for p in PACKAGE.glob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_run_dir_names_and_statuses_come_from_the_contract():
    """No string literal in analysis/ spells a run-dir file or a status that rundir names."""
    names = {rundir.SUMMARY_FILE, rundir.METRICS_FILE, rundir.CONFIG_FILE}
    names |= {str(s) for s in rundir.SUMMARY_STATUSES}
    offenders = []
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                offenders.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert not offenders, offenders
    runs = (PACKAGE / "runs.py").read_text()
    assert "TERMINAL_STATUSES" not in runs and "RUN_MARKERS = (" not in runs
    assert "rundir.iter_points" in runs + (PACKAGE / "points.py").read_text()


def _imported_names(path: Path) -> set[str]:
    """Every name in `path`'s imports, at any depth: each part of a module's dotted name and
    each name imported from it (`from analysis import synthetic_runs` gives both)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            out |= set((node.module or "").split(".")) | {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {part for a in node.names for part in a.name.split(".")}
    return out


def test_the_fixture_writer_lives_with_the_tests_and_the_analysis_never_imports_it():
    """tests/synthetic_runs.py, next to tests/harness.py: importable as `synthetic_runs` by
    every test (tests/ is on sys.path through tests/conftest.py) and by the benchmark, which
    puts tests/ on its path itself; nothing under analysis/ imports it."""
    assert (REPO / "tests" / "synthetic_runs.py").is_file()
    assert not (PACKAGE / "synthetic_runs.py").exists()
    assert not (REPO / "tests" / "analysis" / "synth_rundirs.py").exists()
    importers = [str(p.relative_to(REPO)) for p in PACKAGE.rglob("*.py")
                 if "synthetic_runs" in _imported_names(p)]
    assert not importers, importers
    bench = (REPO / "scripts" / "bench_analysis.py").read_text()
    (path_line,) = [ln for ln in bench.splitlines() if ln.startswith("sys.path")]
    assert 'str(REPO / "tests")' in path_line and "str(REPO)" in path_line
    assert "from synthetic_runs import" in bench and "analysis.synthetic_runs" not in bench
    conftest = (REPO / "tests" / "analysis" / "conftest.py").read_text()
    assert "sys.path" not in conftest and "from synthetic_runs import" in conftest


def test_the_fixture_counts_params_and_flops_by_the_models_formula():
    """No second formula: the fixture's counts are dlrm.model's for the shape it builds, and
    for one shape they are the hand count (dlrm, D=16, both MLPs 64 wide, 3 layers, 26
    tables of 200_000 ids in all, 13 dense features)."""
    import synthetic_runs
    from dlrm.model import flops_per_sample, param_counts

    for model in ("dlrm", "dcn"):
        for emb, bottom, top in ((16, 64, 64), (8, 32, 256), (64, 128, 16)):
            arch = synthetic_runs.architecture_widths(model, emb, bottom, top)
            shape = synthetic_runs.model_shape(model, emb, bottom, top)
            assert sum(shape.cardinalities) == synthetic_runs.TOTAL_IDS and shape.num_sparse_features == 26
            assert {k: arch[k] for k in ("params_embedding", "params_dense", "params_total")} == param_counts(shape)
            assert arch["flops_per_sample"] == flops_per_sample(shape)
            assert arch["params_embedding"] == synthetic_runs.TOTAL_IDS * emb
    arch = synthetic_runs.architecture("dlrm", 16, 64)
    # bottom 13-64-64-16: 6096 params; top (16 + 26*27/2 = 367)-64-64-1: 27777
    assert arch["params_dense"] == 6096 + 27777
    # 6 x (multiply-adds of both MLPs, 5952 + 27648) + 3 x the dot interaction 2 (26+1)^2 16
    assert arch["flops_per_sample"] == 6 * (5952 + 27648) + 3 * 2 * 27 ** 2 * 16


def test_the_result_parts_the_report_reads_are_dataclasses_not_dicts():
    """Every part of a series' or a joint law's result is a typed field (a dict only for
    keyed data: a joint law's group)."""
    import dataclasses

    from analysis.results import JointResult, SeriesResult

    untyped = [f"{cls.__name__}.{f.name}: {f.type}" for cls in (SeriesResult, JointResult)
               for f in dataclasses.fields(cls) if "dict" in str(f.type) and f.name != "group"]
    assert not untyped, untyped


def test_a_part_writes_its_keys_in_order_and_leaves_out_the_optional_ones_it_lacks():
    """fits.json and joint.json are written from the parts: the keys the dicts had, in their
    order, an optional key only where it has a value."""
    from analysis.efficiency import Estimate
    from analysis.joint import OptimalSplit
    from analysis.records import json_safe
    from analysis.results import GammaVsFloor

    row = OptimalSplit(budget_flops=1e15, params=1e6, samples=1e9, ne=float("nan"))
    assert json_safe(row) == {"budget_flops": 1e15, "params": 1e6, "samples": 1e9, "ne": None,
                              "extrapolated": False, "extrapolation": None}
    row.params_ci95, row.ne_ci95 = [1.0, 2.0], [0.5, 0.6]
    assert list(json_safe(row)) == ["budget_flops", "params", "samples", "ne", "extrapolated", "extrapolation",
                                    "params_ci95", "ne_ci95"]
    gap = GammaVsFloor(floor=0.5, gamma_minus_floor=Estimate(0.1))
    assert json_safe([gap]) == [{"floor": 0.5, "gamma_minus_floor": {"value": 0.1, "ci95": None}}]
