"""Overlapping suggestions and a refused export, in a real browser (Debian's chromium, Playwright).

A model's overlapping variants ("Composer Thomas" and "Thomas"; "Chisholm", "Chisholm , Minn",
"Chisholm , Minn .") are hidden behind a toggle, the pipeline's choice shown; a number key picks
the label for new spans; "Accept all" leaves the overlapping ones and says so on the page; with
overlaps allowed it takes them, and then the CoNLL download is disabled with its reason beside
it, and "Export to folder" refuses with nothing written. The server and the browser are those of
tests/test_app_browser.py (its fixtures, which also fail the test on any request that leaves
the app's server), and so is its screenshot folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_app_browser import (  # noqa: F401 (page, screenshots, server: fixtures)
    click,
    expect,
    fill,
    mark,
    page,
    screenshot,
    screenshots,
    server,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

TEXT = "Composer Thomas moved to Chisholm , Minn . in 1990."
VARIANTS = [
    ("Composer Thomas", "Peop", 0.9),
    ("Thomas", "Peop", 0.8),
    ("Chisholm", "Loc", 0.7),
    ("Chisholm , Minn", "Loc", 0.95),
    ("Chisholm , Minn .", "Loc", 0.6),
]


def record() -> dict:
    entities = []
    for words, label, score in VARIANTS:
        start = TEXT.index(words)
        entities.append({"start": start, "end": start + len(words), "label": label, "score": score})
    return {"id": "c", "text": TEXT, "entities": entities, "relations": []}


def nothing_suggested(project: dict) -> bool:
    return all(span.get("status") != "suggested" for doc in project["docs"] for span in doc["spans"])


def accept_all_until_saved(page, path: Path, attempts: int = 3) -> None:  # noqa: F811
    """Click "Accept all" until the saved project has no suggestion left: a click that lands while
    the page reruns (after a setting changed) can be lost, in a loaded CI run it was."""
    for attempt in range(attempts):
        click(page, "button", "Accept all")
        try:
            wait_until_saved(path, nothing_suggested, timeout=30)
            return
        except AssertionError:
            if attempt == attempts - 1:
                raise


def wait_until_saved(path: Path, check: Callable[[dict], bool], timeout: float = 60) -> None:
    """Until the saved project passes ``check``: a change made by a click is applied in the rerun
    that follows it, and a click during that rerun can land on a button being redrawn."""
    deadline = time.monotonic() + timeout
    while not check(json.loads(path.read_text(encoding="utf-8"))["project"]):
        assert time.monotonic() < deadline, f"{path.name} was not saved with the change"
        time.sleep(0.2)


def test_overlapping_suggestions_and_a_refused_export_in_a_real_browser(server, page):  # noqa: F811
    url, work = server
    data = work / "projects"  # the server's --data-dir
    data.mkdir(exist_ok=True)
    (data / "overlaps.jsonl").write_text(json.dumps(record()) + "\n", encoding="utf-8")
    page.goto(f"{url}/annotate")
    page.get_by_role("textbox", name="Dataset file or folder").wait_for(timeout=240_000)  # imports torch
    fill(page, "Dataset file or folder", "overlaps.jsonl")
    click(page, "button", "Open dataset")
    mark(page, "Composer Thomas").wait_for()
    marks = page.locator(".ner-selector mark")
    expect(marks).to_have_count(2)  # "Composer Thomas" and "Chisholm , Minn": the resolved ones

    expect(page.get_by_role("radio", name="Loc")).to_be_checked()  # labels in a fixed order: Loc, Peop
    page.locator("h1").first.click()  # outside any input: number keys pick labels
    page.keyboard.press("2")
    expect(page.get_by_role("radio", name="Peop")).to_be_checked()

    page.get_by_text("Show overlapping suggestions").click()
    expect(marks).to_have_count(5)
    click(page, "button", "Accept all")
    page.get_by_text("Accept all left 3 suggestions").wait_for()
    page.get_by_text("'Thomas' (Peop) overlaps 'Composer Thomas' (Peop)", exact=False).wait_for()
    expect(page.locator(".ner-selector mark.ner-suggested")).to_have_count(3)
    screenshot(page, "annotate-overlaps")

    page.get_by_text("SpERT JSON, JSONL, DocBin: overlapping entities allowed").click()
    wait_until_saved(data / "overlaps.annotations.json", lambda project: project["overlaps"])
    accept_all_until_saved(page, data / "overlaps.annotations.json")
    page.get_by_text("CoNLL IOB2 cannot hold this project: document 'c'").wait_for()
    expect(page.locator(".ner-selector mark.ner-suggested")).to_have_count(0)
    expect(page.get_by_role("button", name="CoNLL IOB2")).to_be_disabled()

    fill(page, "Or write all four to a folder on the server", "exports")
    click(page, "button", "Export to folder")
    page.get_by_text("Nothing was written: document 'c'").wait_for()
    screenshot(page, "export-refused-overlaps")
    assert not (data / "exports").exists()
    assert not [p.name for p in data.iterdir() if p.name.startswith(".exports")]  # no temporary folder
