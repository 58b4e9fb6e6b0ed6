"""docs/migrating-from-celery.md as written: a Python block naming a file is
in that file, every other Python block runs in order (one namespace) against a
real `jobs_worker` process with the seed project, and each `manage.py` line
parses with the command it names."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from django.core.management import load_command_class

from tests.servers import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

DOC = ROOT / "docs" / "migrating-from-celery.md"
FILE = re.compile(r"^# file: (\S+)")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_file_blocks_are_the_files():
    named = [b for b in blocks("python") if FILE.match(b)]
    assert len(named) == 2
    for block in named:
        first, _, body = block.partition("\n")
        path = Path(ROOT / FILE.match(first).group(1))  # type: ignore[union-attr]
        assert body in path.read_text(), path


def test_command_lines_parse():
    lines = [
        line for b in blocks("sh") for line in b.splitlines() if "manage.py" in line
    ]
    assert len(lines) == 4
    for line in lines:
        _, _, name, *args = shlex.split(line)
        command = load_command_class("jobs", name)
        command.create_parser("manage.py", name).parse_args(args)


def test_every_other_block_runs(seed, worker_process):
    worker_process(**seed)
    namespace: dict[str, object] = {}
    runnable = [b for b in blocks("python") if not FILE.match(b)]
    assert len(runnable) == 7
    for number, block in enumerate(runnable, 1):
        try:
            exec(compile(block, f"{DOC.name} block {number}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"block {number} failed:\n{block}") from error
