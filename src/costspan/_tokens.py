"""Token estimates for what a provider did not count: the prompt and output of an interrupted stream.

tiktoken gives OpenAI-exact counts once its encoding is loaded, on a background thread started by
``instrument()``, never on a request thread; until then, and for other providers, a characters-per-token heuristic
is used. tiktoken downloads an encoding it has not cached, so costspan loads it only when it is already on this
machine (in tiktoken's cache: ``TIKTOKEN_CACHE_DIR``, ``DATA_GYM_CACHE_DIR`` or the temporary directory's
``data-gym-cache``, or loaded by the application) unless the ``tokenizer_download`` option
(``COSTSPAN_TOKENIZER_DOWNLOAD=true``) allows the download: instrumenting opens no connection of its own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
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

_ENCODING_NAME = "o200k_base"
# Where tiktoken (tiktoken_ext.openai_public) fetches o200k_base from, which names its cache file, and the file's
# SHA-256: tiktoken reads a cached file whose hash matches and downloads the encoding otherwise.
_ENCODING_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
_ENCODING_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


_encoding: _Encoding | None = None
_loader: threading.Thread | None = None

# Prompt texts tiktoken counted, by (hash, length): a chat re-sends its system prompt and its history with every
# turn, and encoding them again would cost each budgeted call about a millisecond per 10,000 characters on the
# request thread (and even a role's few characters cost several microseconds of tiktoken, ten lookups). Keyed
# without the text, so the cache holds no prompt: a few hundred KiB at most.
_counted: dict[tuple[int, int], int] = {}
_MAX_COUNTED = 4096


def load_tokenizer_in_background(allow_download: bool = False) -> None:
    """Start loading tiktoken's encoding, off the request path, unless it is loaded or loading; a no-op without
    tiktoken. Without ``allow_download`` only an encoding already on this machine is loaded."""
    global _loader
    if _encoding is None and (_loader is None or not _loader.is_alive()):
        _loader = threading.Thread(target=_load_encoding, args=(allow_download,), name="costspan-tiktoken", daemon=True)
        _loader.start()


def load_tokenizer(timeout: float, allow_download: bool = False) -> bool:
    """Load tiktoken's encoding now, waiting up to ``timeout`` seconds (the CLI: no request thread to spare);
    whether it is in use."""
    load_tokenizer_in_background(allow_download)
    if _loader is not None:
        _loader.join(timeout)
    return _encoding is not None


def _load_encoding(allow_download: bool) -> None:
    global _encoding
    try:
        import tiktoken

        if not allow_download and not _available_locally():
            _log.debug(
                "costspan: tiktoken's %s encoding is not on this machine and COSTSPAN_TOKENIZER_DOWNLOAD does not "
                "allow downloading it: estimating tokens from characters",
                _ENCODING_NAME,
            )
            return
        _encoding = tiktoken.get_encoding(_ENCODING_NAME)
    except Exception as error:  # missing package, unreadable cache or no network: the heuristic stays in use
        _log.debug("costspan: tiktoken unavailable, estimating tokens from characters: %r", error)


def _available_locally() -> bool:
    """Whether tiktoken can give the encoding without the network: loaded already, or in its cache intact."""
    from tiktoken import registry

    if _ENCODING_NAME in registry.ENCODINGS:
        return True
    cached = _cache_file()
    return cached is not None and cached.is_file() and _sha256(cached) == _ENCODING_SHA256


def _cache_file() -> Path | None:
    """The file tiktoken caches the encoding in (tiktoken.load.read_file_cached's rule), None when caching is off."""
    directory = os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR"))
    if directory is None:
        directory = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not directory:
        return None
    return Path(directory, hashlib.sha1(_ENCODING_URL.encode()).hexdigest())


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


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
    if isinstance(prompt, _SEQUENCES):
        total = 0
        for item in prompt:
            # a message, the common case, without a call of its own
            total += _TOKENS_PER_MESSAGE + _text_tokens(item) if type(item) is dict else estimate_prompt_tokens(item)
        return total
    if type(prompt) is dict or isinstance(prompt, Mapping):
        return _TOKENS_PER_MESSAGE + _text_tokens(prompt)
    return _text_tokens(prompt)


def _text_tokens(value: Any) -> int:
    """The tokens of every string in a message's content, however nested (content parts, tool calls). Every call
    reserves from this walk, so it takes the plain types (str, dict, list) first: they are what the SDKs get."""
    if isinstance(value, str):
        return _prompt_text_tokens(value)
    if type(value) is dict or isinstance(value, Mapping):
        values: Iterable[Any] = value.values()
    elif isinstance(value, _SEQUENCES):
        values = value
    else:
        return 0
    encoding = _encoding
    total = 0
    for item in values:
        # estimate_text_tokens, inline: a prompt's walk is on every budgeted call's path
        if not isinstance(item, str):
            total += _text_tokens(item)
        elif encoding is not None:
            total += _prompt_text_tokens(item)
        elif item:
            total += max(1, round(len(item) / _CHARS_PER_TOKEN))
    return total


def _prompt_text_tokens(text: str) -> int:
    """A prompt text's estimate; tiktoken's count once per text while it is remembered (a stream's output, counted
    once, is not remembered)."""
    encoding = _encoding
    if encoding is None or not text:
        return estimate_text_tokens(text)
    key = (hash(text), len(text))
    count = _counted.get(key)
    if count is None:
        if len(_counted) >= _MAX_COUNTED:
            _counted.clear()  # a new set of prompts: the old ones are not coming back
        count = _counted[key] = len(encoding.encode_ordinary(text))
    return count
