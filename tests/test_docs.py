"""The README and docs/ against the code: every command they show exists and answers --help, every
documented table and column is in a fresh store and every stored one is documented, every job-file
key of the config model is explained in jobs/nightly.example.toml."""

from __future__ import annotations

import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from drift.cli import app
from drift.config import JobConfig
from drift.store import connect_writer

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def code_text(path: Path) -> str:
    """What a reader would type: inline code spans and fenced blocks, not prose."""
    text = path.read_text()
    fenced = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return "\n".join(fenced + spans)


def cli_commands() -> set[tuple[str, ...]]:
    import typer

    root = typer.main.get_command(app)
    paths: set[tuple[str, ...]] = set()

    def walk(command, prefix: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.add((*prefix, name))
            walk(sub, (*prefix, name))

    walk(root, ())
    return paths


def documented_commands() -> set[tuple[str, ...]]:
    """`drift <command> [<subcommand>]` as the docs write them (also `.venv/bin/drift ...`)."""
    commands = cli_commands()
    groups = {c[0] for c in commands if len(c) == 2}
    found: set[tuple[str, ...]] = set()
    for path in DOCS:
        for match in re.finditer(r"(?:^|[\s/(`])drift ([a-z][a-z-]*)(?![\w:-])(?: ([a-z][a-z-]*))?", code_text(path), flags=re.M):
            first, second = match.group(1), match.group(2)
            found.add((first, second) if first in groups and second else (first,))
    return found


def test_every_command_the_docs_show_exists_and_every_command_is_documented():
    commands = cli_commands()
    shown = documented_commands()
    assert shown - commands == set(), "the docs show commands drift does not have"
    leaves = {c for c in commands if not any(len(o) > len(c) and o[: len(c)] == c for o in commands)}
    assert leaves - shown == set(), "commands no doc shows"


@pytest.mark.parametrize("command", sorted(cli_commands()), ids=" ".join)
def test_every_command_answers_help(command):
    done = subprocess.run([sys.executable, "-m", "drift", *command, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout


def documented_schema() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "schema.md").read_text()
    tables: dict[str, set[str]] = {}
    for section in re.split(r"^### ", text, flags=re.M)[1:]:
        name = re.match(r"`(\w+)`", section)
        if not name:
            continue
        columns = tables.setdefault(name.group(1), set())
        section = section.split("\n## ")[0]  # the last table ends where the next chapter starts
        for row in re.findall(r"^\| ([^|]+) \|", section, flags=re.M):
            if row.strip() in ("column", "---") or set(row.strip()) <= {"-"}:
                continue
            columns.update(c.strip().strip("`") for c in row.split(","))
    return tables


def test_every_table_and_column_in_docs_schema_is_in_a_fresh_store_and_the_other_way_round(tmp_path):
    con = connect_writer(tmp_path / "drift.duckdb")
    stored = {
        table: {
            c
            for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()
        }
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()
    }
    con.close()
    documented = documented_schema()
    assert set(documented) == set(stored)
    for table, columns in stored.items():
        assert documented[table] == columns, table


def model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every key a job file may hold, as section.key (sinks: alerts.sinks.<key> of every sink type)."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        key = f"{prefix}{name}"
        annotation = field.annotation
        inner = [a for a in typing.get_args(annotation) or (annotation,)]
        while len(inner) == 1 and typing.get_args(inner[0]):
            inner = list(typing.get_args(inner[0]))
        models = [a for a in inner for a in (typing.get_args(a) or (a,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if models:
            for sub in models:
                keys |= model_keys(sub, f"{key}.")
        else:
            keys.add(key)
    return keys


def test_every_job_file_key_is_explained_in_the_example_job():
    example = (ROOT / "jobs" / "nightly.example.toml").read_text()
    written = set(re.findall(r"^#?\s*([a-z_]+)\s*=", example, flags=re.M))
    written |= {t.rsplit(".", 1)[-1] for t in re.findall(r"^\[+([a-z_.]+)\]+", example, flags=re.M)}  # [policy.effect]
    missing = sorted(k for k in model_keys(JobConfig) if k.rsplit(".", 1)[-1] not in written)
    assert missing == [], "keys of the config model that jobs/nightly.example.toml does not explain"


def test_the_demos_follow_up_commands_run(demo_dir):
    folder, _ = demo_dir
    job = folder / "demo.toml"
    for command in (
        ["run", str(job), "--day", "2026-11-02", "--json"],
        ["report", str(job), "latest", "--format", "md"],
        ["status", str(job)],
        ["alerts", "list", str(job)],
        ["validate", str(job)],
    ):
        done = subprocess.run([sys.executable, "-m", "drift", *command], capture_output=True, text=True, timeout=900)
        assert done.returncode in (0, 1) if command[0] == "status" else done.returncode == 0, (command, done.stderr)
