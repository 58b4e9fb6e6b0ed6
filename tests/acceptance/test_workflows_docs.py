"""docs/workflows.md runs as written: each of its Python blocks, in order, in
one namespace, against a real `jobs_worker` process."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_page_has_an_example_of_each():
    code = "\n".join(blocks())
    for name in ("chain(", "group(", "chord(", "ignore_previous()", "get_workflow("):
        assert name in code


def test_every_example_runs(worker_process):
    worker_process()
    namespace: dict[str, object] = {}
    for number, block in enumerate(blocks(), 1):
        try:
            exec(compile(block, f"{DOC.name} block {number}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"block {number} failed:\n{block}") from error
