"""The repository speaks of the product: no words of how it was built (issue or step
numbers, remote tools, machine paths), and every repository path, `make` target and
`python -m` module that docs and comments name exists.  Each scanner is also run on a
planted bad line, so that a scanner that finds nothing cannot pass."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".sh", ".toml", ".cfg", ".txt", ".ini"}
TEXT_NAMES = {"Makefile", "run"}  # .ci/run
_SKIP_DIRS = ("tests/analysis/data/",)  # measured fixtures, not prose

# Words of the development process: a reader of the product has no use for them.
PROCESS_WORDS = [
    (r"\bissues?\s*#?\d+\b", "an issue number"),
    (r"#\d{2,}\b(?!\w)", "an issue or pull-request number"),
    (r"\bstop[- ]\d+\b", "a step number of past work"),
    (r"\b(?:session|stop|try) \d+\b", "a step number of past work"),
    (r"/work/|/root/|\.\./shared\b|/home/[a-z]\w*/", "a machine path"),
    (r"\bgive_back\b|\bbudget_left_s\b|\bfiles_at\b|\bfarm-studio\b|\bsubagents?\b|\bclosing note\b",
     "a remote tool of the development process"),
    (r"\bthis (?:2|two)-core machine\b", "the developer's machine as if the reader had it"),
]

# Paths under these folders (or these files at the root) are repository paths.
_PATH = re.compile(r"(?<![\w./-])((?:dlrm|analysis|rundir|runner|configs|docs|scripts|tests|hydra_plugins|\.ci)"
                   r"/[\w./*-]*[\w*])")
_ROOT_DOC = re.compile(r"(?<![\w./-])([A-Z][A-Z_]+\.md)\b")
_MAKE = re.compile(r"(?:^|`|\$ |&& )make ([a-z][\w-]*)", re.M)
_MODULE = re.compile(r"python3? -m ((?:dlrm|analysis|rundir|runner|scripts)(?:\.\w+)*)")
# Names that stand for a value the user picks or a file a run writes, not a file here.
_PLACEHOLDER = re.compile(r"[{}<>*]|NAME|\bnext\b|\.\.\.")


def repo_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    files = []
    for rel in out.splitlines():
        path = REPO / rel
        if rel.startswith(_SKIP_DIRS) or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES:
            files.append(path)
    return files


def process_words(text: str) -> list[str]:
    found = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for pattern, what in PROCESS_WORDS:
            m = re.search(pattern, line, re.I)
            if m:
                found.append(f"{lineno}: {what}: {m.group(0)!r}")
    return found


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*):", text, re.M))


def missing_references(text: str) -> list[str]:
    found = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for m in _PATH.finditer(line):
            ref = m.group(1).rstrip(".")
            if _PLACEHOLDER.search(ref) or (REPO / ref).exists():
                continue
            found.append(f"{lineno}: no such path {ref}")
        for m in _ROOT_DOC.finditer(line):
            if not ((REPO / m.group(1)).exists() or (REPO / "docs" / m.group(1)).exists()):
                found.append(f"{lineno}: no such document {m.group(1)}")
        for m in _MAKE.finditer(line):
            if m.group(1) not in make_targets():
                found.append(f"{lineno}: no make target {m.group(1)}")
        for m in _MODULE.finditer(line):
            parts = m.group(1).split(".")
            base = REPO.joinpath(*parts)
            if not (base.with_suffix(".py").exists() or (base / "__init__.py").exists()
                    or (base / "__main__.py").exists()):
                found.append(f"{lineno}: no module {m.group(1)}")
    return found


def _scan(check) -> list[str]:
    me = Path(__file__).resolve()
    return [f"{p.relative_to(REPO)}:{hit}" for p in repo_files() if p.resolve() != me
            for hit in check(p.read_text(errors="replace"))]


def test_no_words_of_the_development_process():
    hits = _scan(process_words)
    assert not hits, "words of how the project was built, not of the product:\n" + "\n".join(hits)


def test_the_process_word_scanner_finds_a_planted_line():
    assert process_words("as issue 25 asked")
    assert process_words("the run of stop-19")
    assert process_words("see /work/main/runs")
    assert process_words("a helper subagent measured it")
    assert not process_words("the winner at the edge of the rates tried")


def test_every_named_path_make_target_and_module_exists():
    hits = _scan(missing_references)
    assert not hits, "references to nothing:\n" + "\n".join(hits)


def test_the_reference_scanner_finds_a_planted_line():
    assert missing_references("the schema is runner/schema.py")
    assert missing_references("see DESIGN.md")
    assert missing_references("run `make test-all`")
    assert missing_references("python -m runner.nothing")
    assert not missing_references("`make test` runs runner/compose.py; see docs/RUNDIR.md and README.md")
