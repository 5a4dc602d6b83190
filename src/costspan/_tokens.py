"""Token estimates for what a provider did not count: the prompt and output of an interrupted stream.

tiktoken gives OpenAI-exact counts once its encoding is loaded. Loading may download the encoding, so it happens
on a background thread started by ``instrument()``, never on a request thread; until then, and for other
providers, a characters-per-token heuristic is used.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = [
    "chars_per_token",
    "estimate_prompt_tokens",
    "estimate_text_tokens",
    "load_tokenizer",
    "load_tokenizer_in_background",
]

_log = logging.getLogger("costspan")

# Chat formats wrap each message in a few control tokens (role, separators).
_TOKENS_PER_MESSAGE = 4
_CHARS_PER_TOKEN = 4
_SEQUENCES = (list, tuple)


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


_encoding: _Encoding | None = None
_loader: threading.Thread | None = None


def load_tokenizer_in_background() -> None:
    """Start loading tiktoken's encoding once, off the request path; a no-op without tiktoken."""
    global _loader
    if _loader is None:
        _loader = threading.Thread(target=_load_encoding, name="costspan-tiktoken", daemon=True)
        _loader.start()


def load_tokenizer(timeout: float) -> bool:
    """Load tiktoken's encoding now, waiting up to ``timeout`` seconds (the CLI: no request thread to spare);
    whether it is in use."""
    load_tokenizer_in_background()
    assert _loader is not None
    _loader.join(timeout)
    return _encoding is not None


def _load_encoding() -> None:
    global _encoding
    try:
        import tiktoken

        _encoding = tiktoken.get_encoding("o200k_base")
    except Exception as error:  # missing package or no network: the heuristic stays in use
        _log.debug("costspan: tiktoken unavailable, estimating tokens from characters: %r", error)


def estimate_text_tokens(text: str) -> int:
    if not text:
        return 0
    encoding = _encoding
    if encoding is not None:
        return len(encoding.encode_ordinary(text))
    return max(1, round(len(text) / _CHARS_PER_TOKEN))


def chars_per_token() -> int:
    """The fewest characters a token of the estimate spans: the heuristic's ratio, or 1 once tiktoken counts
    (a token is at least one character of ordinary text)."""
    return _CHARS_PER_TOKEN if _encoding is None else 1


def estimate_prompt_tokens(prompt: Any) -> int:
    """Estimate the input tokens of a request's prompt: a string, a message (a mapping), or a list or tuple of
    those. Only lists and tuples are walked: an iterator the user passed was the SDK's to consume."""
    if isinstance(prompt, Mapping):
        return _TOKENS_PER_MESSAGE + _text_tokens(prompt)
    if isinstance(prompt, _SEQUENCES):
        return sum(estimate_prompt_tokens(item) for item in prompt)
    return _text_tokens(prompt)


def _text_tokens(value: Any) -> int:
    """The tokens of every string in a message's content, however nested (content parts, tool calls)."""
    if isinstance(value, str):
        return estimate_text_tokens(value)
    if isinstance(value, Mapping):
        return sum(_text_tokens(item) for item in value.values())
    if isinstance(value, _SEQUENCES):
        return sum(_text_tokens(item) for item in value)
    return 0
