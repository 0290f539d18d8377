"""The package's shape: no two modules import each other (at the top or inside a function), so
the folder layout reads as the data flow."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "drift"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else (node.module or "")
                found |= {c for c in (target, *(f"{target}.{a.name}" for a in node.names)) if c in modules}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in modules}
        graph[name] = found - {name}
    return graph


def test_no_two_modules_import_each_other():
    graph = imports()
    assert len(graph) > 30
    circles = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if a in graph.get(b, set())})
    assert circles == []


# The flow, bottom up (docs/architecture.md): a module imports modules of its own floor or of the
# floors below it, never one above, so the tree reads as the data flow.
FLOORS = [
    # the ground floor: the shapes of results, the job file, and what every stage uses
    {
        "drift",
        "drift.errors",
        "drift.progress",
        "drift.versions",
        "drift.locations",
        "drift.record",
        "drift.config",
        "drift.clock",
    },
    {"drift.sources"},  # where inputs live, and the night's sample
    {"drift.features"},  # kinds, isolation, embeddings, fingerprints, engines: items -> FeatureSets
    {"drift.verdict"},  # tests, comparisons, the policy: FeatureSets -> findings and verdicts
    {"drift.store"},  # the DuckDB store: every table, every statement
    {"drift.baselines"},  # build, load and verify baselines
    {"drift.alerts"},  # the outbox, sinks, delivery
    {"drift.report"},  # HTML, Markdown, pictures, exports
    {"drift.pipeline", "drift.cli", "drift.schedule", "drift.demo", "drift.__main__"},  # one run, the command, the daemon
]


def floor_of(module: str) -> int:
    matches = [
        (len(prefix), i)
        for i, floor in enumerate(FLOORS)
        for prefix in floor
        if module == prefix or (prefix != "drift" and module.startswith(prefix + "."))
    ]
    assert matches, f"{module} is on no floor: add it to FLOORS and docs/architecture.md"
    return max(matches)[1]


def test_imports_point_down_the_flow():
    upward = sorted(
        (module, target) for module, targets in imports().items() for target in targets if floor_of(target) > floor_of(module)
    )
    assert upward == []


def test_the_top_level_holds_only_the_ground_floor_and_the_top():
    top = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    named = {m.split(".", 1)[1] for floor in FLOORS for m in floor if "." in m}
    assert top - {"__init__"} == named
