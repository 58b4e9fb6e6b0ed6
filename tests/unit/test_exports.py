from __future__ import annotations

from types import ModuleType

import jobs


def test_all_is_sorted_and_complete():
    public = {
        name
        for name in dir(jobs)
        if not name.startswith("_") and not isinstance(getattr(jobs, name), ModuleType)
    } - {"annotations"}
    assert jobs.__all__ == sorted(jobs.__all__)
    assert set(jobs.__all__) == public
