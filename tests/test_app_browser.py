"""End to end: ``ner app`` on a free localhost port, driven in headless Chromium by Playwright.

Extract with the shipped pipeline, then on Annotate: select a word with the mouse (after a
character outside the BMP, which JavaScript counts as two), accept a suggestion, link two
entities by clicking them, finish the document with its keyboard shortcut, download the JSONL
export and compare it with what it must be, byte for byte. Then every field that takes a path
(the dataset, the export folder, the project in the URL) refuses ``/etc/passwd``, a ``../`` path
and a symlink that leads out of the data folder, and nothing is read or written; an upload larger
than the app accepts is stopped by the browser. A folder with a bad file, a Windows-1252 file and a
subfolder opens with the bad file listed, and a reload (after a visit to another page) comes back
to the open project, at its document.

Every request the browser makes is recorded, and a test fails if one goes to any host but the
app's server: the app must work offline. A screenshot of every page goes to a ``screenshots``
folder under pytest's temporary folder (its path is printed), and also to docs/screenshots/ when
NER_SCREENSHOTS=1. Debian's chromium is used (CI installs it): never a downloaded browser.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
DOCS_SCREENSHOTS = Path(__file__).parents[1] / "docs" / "screenshots"  # with NER_SCREENSHOTS=1
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARGS += ["--disable-sync", "--no-first-run"]
TEXT_1 = "The 𝛼 team of Anna Meyer moved to Paris in 2010."
TEXT_2 = "Bob Stone works for Acme Corp in Boston."
RECORDS = [
    {"id": "first", "text": TEXT_1, "entities": [{"start": 14, "end": 24, "label": "Peop", "score": 0.9}]},
    {
        "id": "second",
        "text": TEXT_2,
        "entities": [
            {"start": 0, "end": 9, "label": "Peop", "score": 0.8},
            {"start": 20, "end": 29, "label": "Org", "score": 0.7},
            {"start": 33, "end": 39, "label": "Loc", "score": 0.6},
        ],
        "relations": [
            {"head": 0, "tail": 1, "label": "Work_For", "score": 0.9},
            {"head": 0, "tail": 2, "label": "Live_In", "score": 0.5},
        ],
    },
]

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_server(process: subprocess.Popen) -> None:
    """Stop the server's whole process group (nothing it started may outlive the test): SIGTERM,
    then SIGKILL if it has not stopped within 20 s."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_until_healthy(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ner app exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} not healthy after {timeout} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """``ner app`` in an empty working directory (no runs/), with a data dir for its projects."""
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (.ci/run installs it)")
    pytest.importorskip("playwright.sync_api")
    work = tmp_path_factory.mktemp("app")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NER_APP_PIPELINES": ""}
    command = [
        sys.executable,
        "-m",
        "ner.cli",
        "app",
        "--port",
        str(port),
        "--data-dir",
        str(work / "projects"),
    ]
    with open(work / "server.log", "wb") as log:
        process = subprocess.Popen(
            command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://localhost:{port}"
    try:
        wait_until_healthy(url, process)
        yield url, work
    finally:  # the whole process group: nothing the server started may outlive the test
        stop_server(process)


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Iterator[Path]:
    """The folder the screenshots go to; copied to docs/screenshots/ at the end with NER_SCREENSHOTS=1."""
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots: {folder}")
    yield folder
    if os.environ.get("NER_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for shot in sorted(folder.glob("*.png")):
            shutil.copy2(shot, DOCS_SCREENSHOTS / shot.name)


@pytest.fixture()
def page(server, screenshots, request):
    """A Chromium page whose every request is recorded: after the test, any request to a host
    other than the app's server fails it. When the test fails, a screenshot of where it stood."""
    from playwright.sync_api import sync_playwright

    url, _ = server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        requested: list[str] = []
        context.on("request", lambda r: requested.append(r.url))
        context.on("websocket", lambda ws: requested.append(ws.url))  # not a "request" in Playwright
        page = context.new_page()
        page.set_default_timeout(90_000)  # generous: CI machines may be busy
        page.screenshots = screenshots
        failures = request.session.testsfailed
        yield page
        if request.session.testsfailed > failures:
            screenshot(page, "failure")
        browser.close()
    assert requested, "no request was recorded: the recording does not work"
    elsewhere = foreign(requested, url)
    assert not elsewhere, f"requests that left the app's server {url}: {elsewhere}"


def foreign(requested: list[str], server: str) -> list[str]:
    """The network requests (http, https, ws, wss) to any host and port but ``server``'s; data:
    and blob: URLs are not network requests."""
    local = urlsplit(server).netloc
    return sorted(
        {
            u
            for u in requested
            if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).netloc != local
        }
    )


def test_foreign_requests_are_found():
    """The check itself: a font from Google is caught, the server and data: URLs are not."""
    server = "http://localhost:8501"
    requested = [
        "http://localhost:8501/_stcore/health",
        "ws://localhost:8501/_stcore/stream",
        "data:image/svg+xml,<svg/>",
        "https://fonts.gstatic.com/s/i/short-term/release/materialsymbolsrounded/label/default/24px.svg",
        "http://localhost:9999/elsewhere",
    ]
    assert foreign(requested, server) == [
        "http://localhost:9999/elsewhere",
        "https://fonts.gstatic.com/s/i/short-term/release/materialsymbolsrounded/label/default/24px.svg",
    ]


def screenshot(page, name: str) -> None:
    """The whole page, in the session's screenshot folder: the viewport grows to the height of
    Streamlit's scrolling main area (again while tables and charts laid out in the taller window
    make it taller still)."""
    height = 0
    for _ in range(4):
        needed = page.evaluate(
            "() => Math.max(...[...document.querySelectorAll("
            "'[data-testid=stMain], [data-testid=stSidebarContent]')].map(e => e.scrollHeight))"
        )
        if needed <= height:
            break
        height = needed
        page.set_viewport_size({"width": 1400, "height": max(900, height + 40)})
        page.wait_for_timeout(800)  # let tables, charts and the graph lay out again
    page.screenshot(path=page.screenshots / f"{name}.png")
    page.set_viewport_size({"width": 1400, "height": 900})


def select_with_mouse(page, word: str) -> None:
    """Drag the mouse over ``word`` in the annotation text, as an annotator would."""
    box = page.evaluate(
        """(word) => {
          const root = document.querySelector('.ner-selector');
          const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
          while (walker.nextNode()) {
            const node = walker.currentNode, at = node.data.indexOf(word);
            if (at >= 0) {
              const range = document.createRange();
              range.setStart(node, at);
              range.setEnd(node, at + word.length);
              const r = range.getBoundingClientRect();
              return {x: r.x, y: r.y, width: r.width, height: r.height};
            }
          }
          return null;
        }""",
        word,
    )
    assert box, f"{word!r} is not in the annotation text"
    middle = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 1, middle)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 1, middle, steps=5)
    page.mouse.up()


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def mark(page, text: str):
    return page.locator(".ner-selector mark", has_text=text).first


def test_extract_annotate_export_in_a_real_browser(server, page, tmp_path):
    url, work = server
    page.goto(url)
    page.get_by_role("button", name="Extract").wait_for(timeout=240_000)  # the first run imports torch
    click(page, "button", "Extract")
    page.get_by_text("The text is empty: paste some text, then press Extract.").wait_for()

    page.get_by_label("Text").fill("John Smith works for Acme Corp in Boston.")
    click(page, "button", "Extract")
    page.locator("mark.ner-mark").first.wait_for(timeout=180_000)  # the first run loads the model
    marks = page.locator("mark.ner-mark").all_inner_texts()
    assert any(m.startswith("John Smith") and "PEOP" in m.upper() for m in marks), marks
    with page.expect_download() as download:
        click(page, "button", "Download JSON")
    assert download.value.suggested_filename == "pasted-text.extraction.jsonl"  # named after the input
    screenshot(page, "extract")

    click(page, "link", "Models")
    page.locator("[data-testid=stVegaLiteChart]").first.wait_for()
    screenshot(page, "models")

    dataset = work / "projects" / "docs.jsonl"  # in the data folder: the app opens nothing elsewhere
    dataset.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS), encoding="utf-8")
    click(page, "link", "Annotate")
    page.get_by_role("textbox", name="Dataset file or folder").fill(str(dataset))
    screenshot(page, "annotate-open")
    click(page, "button", "Open dataset")
    mark(page, "Anna Meyer").wait_for()

    page.locator("[data-testid=stButtonGroup] button", has_text="Loc").click()  # the label for new spans
    select_with_mouse(page, "Paris")  # after "𝛼": two UTF-16 units, one Python character
    mark(page, "Paris").wait_for()
    page.locator(".st-key-accept_span_0_0_14_24_Peop_suggested button").first.click()
    page.locator(".st-key-accept_span_0_0_14_24_Peop_accepted").first.wait_for(state="attached")
    click(page, "combobox", "Relation")
    click(page, "option", "Live_In")
    expect(page.get_by_role("combobox", name="Relation")).to_have_value("Live_In")
    mark(page, "Anna Meyer").click()  # a click on an entity fills "From", the next one "To"
    expect(page.get_by_role("combobox", name="From")).to_have_value("Anna Meyer (Peop)")
    mark(page, "Paris").click()
    expect(page.get_by_role("combobox", name="To")).to_have_value("Paris (Loc)")
    click(page, "button", "Add relation")
    page.get_by_text("Live_In →").wait_for()
    screenshot(page, "annotate")

    page.locator("h1").first.click()  # focus outside any input, then the "done, next" shortcut
    page.keyboard.press("d")
    page.get_by_text("Document 2 of 2").wait_for()
    page.get_by_text("1 of 2 documents done").wait_for()
    with page.expect_download() as download:
        click(page, "button", "JSONL records")
    exported = tmp_path / "export.jsonl"
    download.value.save_as(exported)
    assert exported.read_text(encoding="utf-8") == expected_export()


def expected_export() -> str:
    """Only what was accepted: Anna Meyer (the accepted suggestion), Paris (selected), their link."""
    entities = [
        {"start": 14, "end": 24, "text": "Anna Meyer", "label": "Peop", "score": 0.9, "head": None},
        {"start": 34, "end": 39, "text": "Paris", "label": "Loc", "score": None, "head": None},
    ]
    first = {"entities": entities, "relations": [{"head": 0, "tail": 1, "label": "Live_In", "score": None}]}
    records = [(TEXT_1, first), (TEXT_2, {"entities": [], "relations": []})]
    return "".join(json.dumps(_record(text, found), ensure_ascii=False) + "\n" for text, found in records)


def _record(text: str, found: dict) -> dict:
    return {
        "source": None,
        "line": None,
        "item": None,
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "pipeline": None,
        "encoding": None,
        "text": text,
        **found,
    }


def snapshot(folder: Path, skip: tuple[Path, ...] = ()) -> dict[str, bytes | None]:
    """Every entry under ``folder`` (but ``skip``) with its content: what must not change."""
    return {
        str(p): None if p.is_dir() or p.is_symlink() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if not any(p == s or s in p.parents for s in skip)
    }


def settle(page) -> None:
    """Wait until the page's last rerun is over: no element is stale, and no run is shown."""
    page.wait_for_function(
        "() => !document.querySelector('[data-stale=true], [data-testid=stStatusWidgetRunningIcon]')"
    )


def once(page, locator, act: Callable, attempts: int = 5):
    """``act(locator)`` once the page has settled and ``locator`` matches one element.

    While the page reruns, Streamlit can show an old and a new copy of a widget for a moment, and
    a rerun can begin between the count and the act: Playwright then raises a strict-mode
    violation at once (no retry, for a click or an ``expect``), so the whole step is retried.
    """
    from playwright.sync_api import Error

    for attempt in range(attempts):
        settle(page)
        expect(locator).to_have_count(1)
        try:
            return act(locator)
        except Error as error:  # AssertionError (a wrong text) is not retried here
            if "strict mode violation" not in str(error) or attempt == attempts - 1:
                raise


def selector_shows(page, text: str) -> None:
    """The span selector (one, once the old document's copy is gone) shows ``text``."""
    once(page, page.locator(".ner-selector"), lambda selector: expect(selector).to_have_text(text))


def fill(page, name: str, value: str) -> None:
    """Type ``value`` into the one text field ``name``."""
    once(page, page.get_by_role("textbox", name=name), lambda field: field.fill(value))


def click(page, role: str, name: str | re.Pattern) -> None:
    """Click the one element ``role`` named ``name`` (a click on an old copy would be lost)."""
    once(page, page.get_by_role(role, name=name), lambda element: element.click())


def test_paths_outside_the_data_folder_are_refused_in_a_real_browser(server, page):
    url, work = server
    data = work / "projects"  # the server's --data-dir
    data.mkdir(exist_ok=True)  # ner app has created it already; the test does not rely on that
    secret = work / "secret.jsonl"
    secret.write_text(json.dumps({"text": "the secret"}) + "\n", encoding="utf-8")
    (data / "link.jsonl").symlink_to(secret)
    (data / "refusals.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    outside = snapshot(work, skip=(data, work / "server.log"))
    inside = snapshot(data)
    refused = [
        ("/etc/passwd", "/etc/passwd is outside the data folder"),
        ("../secret.jsonl", "../secret.jsonl is outside the data folder"),
        ("link.jsonl", "link.jsonl leads outside the data folder"),
    ]

    page.goto(f"{url}/annotate?project=/etc/passwd")  # a project named in the URL
    page.get_by_text(
        "The last project could not be reopened: /etc/passwd is outside the data folder"
    ).wait_for(timeout=240_000)
    for raw, message in refused:  # the dataset field
        fill(page, "Dataset file or folder", raw)
        click(page, "button", "Open dataset")
        page.get_by_text(message).wait_for()
    screenshot(page, "annotate-refused")

    click(page, "tab", "Upload a dataset")  # larger than the app accepts
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(
        files=[{"name": "big.jsonl", "mimeType": "application/json", "buffer": b" " * (27 * 10**6)}]
    )
    page.get_by_text("or smaller").wait_for()
    assert snapshot(data) == inside  # nothing read into a project, no upload kept

    click(page, "tab", "Dataset on the server")
    fill(page, "Dataset file or folder", "refusals.jsonl")
    click(page, "button", "Open dataset")
    mark(page, "Anna Meyer").wait_for()
    for raw, message in [  # the export folder
        (str(work / "exports"), f"{work / 'exports'} is outside the data folder"),
        ("../exports", "../exports is outside the data folder"),
        ("/etc", "/etc is outside the data folder"),
    ]:
        fill(page, "Or write all four to a folder on the server", raw)
        click(page, "button", "Export to folder")
        page.get_by_text(message).wait_for()
    screenshot(page, "export-refused")
    assert "root:" not in page.content() and "the secret" not in page.content()
    assert snapshot(work, skip=(data, work / "server.log")) == outside


def test_a_folder_with_a_bad_file_opens_and_a_reload_resumes_in_a_real_browser(server, page):
    url, work = server
    texts = work / "projects" / "texts"  # in the data folder
    (texts / "sub").mkdir(parents=True)
    (texts / "latin.txt").write_bytes("Zoë à Paris, café crème.".encode("cp1252"))  # as ner extract reads it
    (texts / "one.txt").write_text("Anna Meyer lives in Paris.", encoding="utf-8")
    (texts / "sub" / "nested.txt").write_text("Bob Stone works for Acme Corp.", encoding="utf-8")
    (texts / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

    page.goto(f"{url}/annotate")
    page.get_by_role("textbox", name="Dataset file or folder").wait_for(timeout=240_000)  # a cold start
    fill(page, "Dataset file or folder", "texts")
    click(page, "button", "Open dataset")
    page.get_by_text("1 file was left out of texts: the other 3 opened.").wait_for()
    row = page.locator("[data-testid=stTable] tr", has_text="binary.txt")
    expect(row).to_contain_text("this is not a text file (binary content)")
    selector_shows(page, "Zoë à Paris, café crème.")
    screenshot(page, "annotate-folder")

    for number in (2, 3):  # the last is the subfolder's file
        settle(page)  # a click while the page reruns can land on an element that is being replaced
        click(page, "button", re.compile(r"^Next\b"))
        page.get_by_text(f"Document {number} of 3").wait_for()
    selector_shows(page, "Bob Stone works for Acme Corp.")

    click(page, "link", "Models")  # another page drops the query from the URL
    page.locator("[data-testid=stVegaLiteChart]").first.wait_for()
    click(page, "link", "Annotate")
    page.get_by_text("Document 3 of 3").wait_for()
    page.reload()  # a new session: the URL alone must bring the project back
    page.get_by_text("Document 3 of 3").wait_for(timeout=120_000)
    selector_shows(page, "Bob Stone works for Acme Corp.")
    assert (
        "project=texts.annotations.json" in page.url
        and (work / "projects" / "texts.annotations.json").is_file()
    )
    expect(page.get_by_role("button", name="Open dataset")).to_have_count(0)
    page.get_by_text("1 file was left out of texts").wait_for()  # still listed after the reload
    screenshot(page, "annotate-reloaded")
