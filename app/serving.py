"""How ``ner app`` starts the server: its Streamlit options, its data folder, the Host names it
answers. Kept apart from the pages, and free of heavy imports, because the CLI reads it before
Streamlit starts; the values that both sides need (the upload limit) are defined once, here.
"""

from __future__ import annotations

import math
from pathlib import Path

from app.paths import DEFAULT_FOLDER
from app.paths import ENV_DATA_DIR as ENV_DATA_DIR  # re-exported: ``ner app`` sets it

MAX_UPLOAD_BYTES = 5_000_000  # what the pages accept; Streamlit's own limit is derived from it
ENV_ALLOWED_HOSTS = "NER_APP_ALLOWED_HOSTS"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")
ANY_IP = "*ip"  # in the allowed list: any IP address literal
SERVER_SCRIPT = Path(__file__).with_name("server.py")


def upload_limit_mb(max_bytes: int = MAX_UPLOAD_BYTES) -> int:
    """``server.maxUploadSize`` (whole MiB) for ``max_bytes``: the smallest limit that still lets
    every upload the app accepts through, so a larger one is stopped before it is received."""
    return max(1, math.ceil(max_bytes / 2**20))


def streamlit_options(port: int, host: str) -> list[str]:
    """The ``streamlit run`` flags of ``ner app``."""
    settings = {
        "server.port": port,
        "server.address": host,
        "server.headless": "true",
        "server.fileWatcherType": "none",
        "server.maxUploadSize": upload_limit_mb(),
        "browser.gatherUsageStats": "false",
        "client.toolbarMode": "minimal",
    }
    return [item for key, value in settings.items() for item in (f"--{key}", str(value))]


def allowed_hosts(host: str, extra: list[str]) -> list[str]:
    """The names a request's Host header may give: loopback, the address listened on, and each
    ``--allowed-host``. A wildcard address stands for :data:`ANY_IP`: any IP address literal (a page
    that uses DNS rebinding always reaches the server under a name of its own)."""
    listen = host.strip().lower().strip("[]").rstrip(".")
    names = [*LOOPBACK_HOSTS, ANY_IP if listen in WILDCARD_ADDRESSES else listen]
    names += [name.strip().lower().strip("[]").rstrip(".") for name in extra if name.strip()]
    return list(dict.fromkeys(names))


def prepare_data_folder(data_dir: Path | None) -> Path:
    """The data folder, absolute and created if missing (``./annotations`` by default); an
    ``OSError`` when it cannot be, so ``ner app`` can refuse to start instead of failing later."""
    folder = (data_dir or Path.cwd() / DEFAULT_FOLDER).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
