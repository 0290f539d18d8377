"""Real files written by other projects (../shared/corpus): each ends as an item or a specific error.

Skipped where the corpus is absent (a user's clone does not have it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drift.features.isolation import Task, open_all
from drift.features.kinds import KINDS, InputError

from .conftest import CORPUS

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not beside this clone")

LIMITS = {
    "image": {"max_bytes": 25_000_000, "max_pixels": 50_000_000, "crop_size": 224},
    "document": {"max_bytes": 50_000_000, "max_pages": 500, "text_chars": 2000, "page_size": 224},
    "payload": {"max_bytes": 10_000_000, "max_depth": 64, "max_array": 100_000},
}
# Categories that mean "we could not say what was wrong", or that our own code failed (internal):
# none of the corpus may end there.
VAGUE = {"unreadable", "crashed", "internal"}


def outcomes(folder: str, kind: str) -> dict[str, str]:
    files = sorted(p for p in (CORPUS / folder).rglob("*") if p.is_file())
    assert files
    tasks = [Task(str(p.relative_to(CORPUS)), KINDS[kind].open_input, p, LIMITS[kind], 20) for p in files]
    results = dict(open_all(tasks, workers=2, memory_mb=2048, tasks_per_worker=200))
    assert len(results) == len(files)
    return {name: (r.category if isinstance(r, InputError) else "ok") for name, r in results.items()}


def test_images_end_as_items_or_specific_errors():
    seen = outcomes("images", "image")
    assert not {n: c for n, c in seen.items() if c in VAGUE}
    assert seen["images/pillow/decompression_bomb.gif"] == "bomb"
    assert seen["images/pillow/eps_timeout-d675703545fee17acab56e5fec644c19979175de.eps"] == "unsupported"
    assert sum(c == "ok" for c in seen.values()) > 50


def test_pdfs_end_as_items_or_specific_errors():
    seen = outcomes("pdf", "document")
    assert not {n: c for n, c in seen.items() if c in VAGUE}
    assert {"ok", "encrypted", "corrupt", "not_pdf"} <= set(seen.values())
    assert seen["pdf/sample-files/005-libreoffice-writer-password_libreoffice-writer-password.pdf"] == "encrypted"
    ordinary = [n for n in seen if n.startswith("pdf/sample-files/") and n.endswith(".pdf")]
    assert sum(seen[n] == "ok" for n in ordinary) >= len(ordinary) - 3


def test_json_follows_the_test_suite_and_reads_real_api_responses():
    seen = outcomes("json", "payload")
    assert not {n: c for n, c in seen.items() if c in VAGUE}
    suite = {Path(n).name.split("test_parsing_")[-1]: c for n, c in seen.items() if "jsontestsuite" in n}
    assert all(c == "ok" for n, c in suite.items() if n.startswith("y_"))
    assert all(c != "ok" for n, c in suite.items() if n.startswith("n_"))
    real = [c for n, c in seen.items() if "quicktype" in n and n.endswith(".json")]
    assert sum(c == "ok" for c in real) >= 0.9 * len(real)
