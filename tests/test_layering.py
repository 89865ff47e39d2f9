"""The import rules of ARCHITECTURE.md, checked on the source tree."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lmforge"

# package -> imports it must never make
FORBIDDEN = {
    "data": ["torch", "lmforge.models", "lmforge.training", "lmforge.inference", "lmforge.commands",
             "lmforge.serving", "lmforge.tokenization"],
    "tokenization": ["torch", "lmforge.models", "lmforge.training", "lmforge.inference", "lmforge.commands",
                     "lmforge.serving"],
    "models": ["lmforge.training", "lmforge.inference", "lmforge.serving", "lmforge.commands", "lmforge.data",
               "lmforge.runs", "lmforge.config", "torch.distributed"],
    # metrics are pure: tasks use them, never the other way round
    "evaluation": ["lmforge.training", "lmforge.inference", "lmforge.serving", "lmforge.commands", "lmforge.tasks",
                   "lmforge.applications"],
    # task rows read, encode, score and decode; running and training them is done above them
    "tasks": ["lmforge.training", "lmforge.inference", "lmforge.applications", "lmforge.serving",
              "lmforge.commands"],
    "inference": ["lmforge.training", "lmforge.applications", "lmforge.serving", "lmforge.commands"],
    "training": ["lmforge.inference", "lmforge.applications", "lmforge.serving", "lmforge.commands"],
    "serving": ["lmforge.training", "lmforge.commands"],
    # counting models: NumPy only, no torch and nothing above them
    "applications": ["lmforge.commands", "lmforge.serving"],
    # other ecosystems' formats and runtimes: reads runs through inference, never trains or serves
    "interop": ["lmforge.training", "lmforge.applications", "lmforge.serving", "lmforge.commands"],
    "embeddings": ["torch", "lmforge.models", "lmforge.training", "lmforge.inference", "lmforge.commands",
                   "lmforge.serving"],
    "ngram": ["torch", "lmforge.models", "lmforge.training", "lmforge.inference", "lmforge.commands",
              "lmforge.serving"],
}
# torch.distributed is imported by training/distributed.py alone
DISTRIBUTED_OWNER = PACKAGE / "training" / "distributed.py"
# the leaves every layer shares import nothing of lmforge but each other
LEAVES = {"errors.py": set(), "artifacts.py": {"lmforge.errors"}, "devices.py": {"lmforge.errors"},
          "config.py": {"lmforge.errors"}, "runs.py": {"lmforge.errors", "lmforge.artifacts", "lmforge.config"}}


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def relative_imports_of(path: Path) -> list[int]:
    return [node.lineno for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.level > 0]


def violates(name: str, rule: str) -> bool:
    return name == rule or name.startswith(rule + ".")


def test_packages_respect_the_dependency_direction():
    problems = []
    for package, rules in FORBIDDEN.items():
        for path in (PACKAGE / package).rglob("*.py"):
            for name in imports_of(path):
                problems += [f"{path.relative_to(PACKAGE)} imports {name}" for rule in rules if violates(name, rule)]
    assert not problems, problems


def test_only_training_distributed_imports_torch_distributed():
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if p != DISTRIBUTED_OWNER and any(violates(n, "torch.distributed") for n in imports_of(p))]
    assert not offenders


def test_no_command_imports_another_command():
    """A verb's work is a package function; commands only compose (and would otherwise drag each other in)."""
    offenders = [f"{p.relative_to(PACKAGE)} imports {name}" for p in (PACKAGE / "commands").glob("*.py")
                 for name in imports_of(p) if violates(name, "lmforge.commands")]
    assert not offenders, offenders


def test_imports_are_absolute():
    offenders = {str(p.relative_to(PACKAGE)): lines for p in PACKAGE.rglob("*.py") if (lines := relative_imports_of(p))}
    assert not offenders, offenders


def test_the_leaf_modules_import_no_layer():
    problems = []
    for name, allowed in LEAVES.items():
        found = {n for n in imports_of(PACKAGE / name) if n.startswith("lmforge")}
        problems += [f"{name} imports {n}" for n in found - allowed]
    assert not problems, problems


def test_the_rules_catch_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nfrom lmforge.training.loop import train\nfrom .sibling import x\n")
    assert {"torch", "lmforge.training.loop"} <= imports_of(bad)
    assert violates("lmforge.training.loop", "lmforge.training")
    assert relative_imports_of(bad) == [3]


def test_no_utils_module():
    assert not list(PACKAGE.rglob("utils.py"))


def test_the_cli_imports_only_the_chosen_verb():
    """`prepare` never pays torch's second of start-up (each --workers benchmark and every worker did),
    and `lmforge --help` still lists every verb."""
    import subprocess
    import sys

    code = ("import sys; from lmforge.cli import build_parser; parser, modules = build_parser(sys.argv[1:]); "
            "print(sorted(modules), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, "prepare", "x", "--out", "y"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[:2] == ["['prepare']", "False"], out
    from lmforge.cli import VERBS, build_parser

    help_text = build_parser([])[0].format_help()
    assert all(verb in help_text for verb in VERBS)
