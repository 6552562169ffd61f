"""DNS rebinding: the app answers only requests whose Host names a host it was started for.

Unit tests of the Host parsing and the allowed list, then ``ner app`` itself on a free port: an
HTTP request and a websocket upgrade with ``Host: evil.example`` (and a matching Origin, as a
rebinding page sends) are refused with 403; the same with ``Host: localhost:PORT`` are answered.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.hosts import allowed_from_env, host_name, is_allowed
from app.serving import ANY_IP, allowed_hosts, upload_limit_mb
from tests.test_app_browser import free_port, stop_server, wait_until_healthy

LOOPBACK = ["localhost", "127.0.0.1", "::1"]


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:8501", "localhost"),
        ("LOCALHOST", "localhost"),
        ("localhost.:8501", "localhost"),
        ("[::1]:8501", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("evil.example", "evil.example"),
        ("", None),
        (None, None),
        ("localhost:notaport", None),
        ("localhost:99999", None),
        ("user@localhost", None),
        ("localhost/path", None),
        ("local host", None),
        ("[::1", None),
    ],
)
def test_host_names_are_parsed_strictly(header, name):
    assert host_name(header) == name


def test_allowed_names_are_loopback_and_the_listening_address():
    assert allowed_hosts("localhost", []) == LOOPBACK
    named = allowed_hosts("10.1.2.3", ["Annotate.Example.org."])
    assert named == [*LOOPBACK, "10.1.2.3", "annotate.example.org"]
    assert allowed_hosts("0.0.0.0", []) == [*LOOPBACK, ANY_IP]
    assert allowed_from_env({}) == LOOPBACK
    assert allowed_from_env({"NER_APP_ALLOWED_HOSTS": "localhost,box.lan"}) == ["localhost", "box.lan"]


def test_a_wildcard_address_accepts_ip_literals_but_no_other_name():
    allowed = allowed_hosts("0.0.0.0", [])
    assert is_allowed("192.168.1.20:8501", allowed) and is_allowed("[fe80::1]:8501", allowed)
    assert not is_allowed("evil.example:8501", allowed)
    assert not is_allowed("192.168.1.20.evil.example", allowed)


@settings(deadline=None, max_examples=300)
@given(st.from_regex(r"[a-z0-9][a-z0-9.-]{0,40}", fullmatch=True), st.integers(1, 65535))
def test_only_listed_names_are_answered(name, port):
    allowed = allowed_hosts("localhost", ["annotate.example.org"])
    expected = name.rstrip(".") in allowed
    assert is_allowed(f"{name}:{port}", allowed) == expected
    assert is_allowed(f"localhost:{port}", allowed)


@settings(deadline=None, max_examples=300)
@given(st.text(max_size=60))
def test_any_header_is_judged_without_an_exception(header):
    assert is_allowed(header, allowed_hosts("localhost", [])) in (True, False)


def test_the_upload_limit_lets_what_the_app_accepts_through_and_no_more():
    assert upload_limit_mb(5_000_000) == 5  # 5 MiB: the first whole MiB above 5 MB
    assert upload_limit_mb(5 * 2**20) == 5 and upload_limit_mb(5 * 2**20 + 1) == 6
    assert upload_limit_mb(10) == 1


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[int]:
    """``ner app`` on a free port, as a user starts it (``--host`` left at localhost)."""
    pytest.importorskip("streamlit")
    work = tmp_path_factory.mktemp("hosts")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NER_APP_PIPELINES": ""}
    command = [sys.executable, "-m", "ner.cli", "app", "--port", str(port), "--data-dir", str(work / "data")]
    with open(work / "server.log", "wb") as log:
        process = subprocess.Popen(
            command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_healthy(f"http://localhost:{port}", process)
        yield port
    finally:
        stop_server(process)


def status(port: int, host: str, path: str, upgrade: bool = False) -> str:
    """The status line the server answers a raw request with (a websocket upgrade if asked)."""
    headers = [f"GET {path} HTTP/1.1", f"Host: {host}", f"Origin: http://{host}"]
    if upgrade:
        headers += ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13"]
        headers += ["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol: streamlit"]
    else:
        headers += ["Connection: close"]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1"))
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(1024)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n")[0].decode("latin-1")


@pytest.mark.parametrize("path", ["/", "/_stcore/health", "/_stcore/host-config", "/annotate"])
def test_http_for_another_host_name_is_refused(server, path):
    assert status(server, "evil.example", path).split()[1] == "403"
    assert status(server, f"evil.example:{server}", path).split()[1] == "403"
    assert status(server, f"localhost:{server}", path).split()[1] == "200"
    assert status(server, f"127.0.0.1:{server}", path).split()[1] == "200"


def test_a_websocket_for_another_host_name_is_refused(server):
    assert status(server, f"evil.example:{server}", "/_stcore/stream", upgrade=True).split()[1] == "403"
    assert status(server, "evil.example", "/_stcore/stream", upgrade=True).split()[1] == "403"
    assert status(server, f"localhost:{server}", "/_stcore/stream", upgrade=True).split()[1] == "101"
    assert status(server, f"[::1]:{server}", "/_stcore/stream", upgrade=True).split()[1] == "101"
