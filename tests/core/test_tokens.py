"""Estimates for what a provider did not count: characters per token without tiktoken's encoding loaded, and
tiktoken's counts of the prompts a budget reserves for, remembered per text."""

from __future__ import annotations

from typing import Any

import pytest

from costspan import _tokens
from costspan._tokens import estimate_prompt_tokens, estimate_text_tokens


def test_text_is_about_four_characters_a_token() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("hi") == 1
    assert estimate_text_tokens("x" * 400) == 100


def test_each_message_adds_its_framing_once() -> None:
    plain = [{"role": "user", "content": "x" * 400}]
    parts = [{"role": "user", "content": [{"type": "text", "text": "x" * 200}, {"type": "text", "text": "x" * 200}]}]
    # role (1) + text (100) + framing (4); content parts are not messages and add no framing of their own
    assert estimate_prompt_tokens(plain) == 105
    assert estimate_prompt_tokens(parts) == 1 + 1 + 50 + 1 + 50 + 4
    assert estimate_prompt_tokens(("x" * 40, plain)) == 10 + 105  # Anthropic's (system, messages)


def test_an_iterator_is_never_consumed() -> None:
    messages = iter([{"role": "user", "content": "hello"}])
    assert estimate_prompt_tokens(messages) == 0
    assert next(messages) == {"role": "user", "content": "hello"}


class _CountingEncoding:
    """A real tiktoken BPE (byte-level ranks, GPT-style pre-tokenizer) that counts the texts it encodes."""

    def __init__(self) -> None:
        import tiktoken

        ranks = {bytes([byte]): byte for byte in range(256)}
        for merge in (b"th", b"the", b" the", b"in", b"ing", b"er", b"on"):
            ranks[merge] = len(ranks)
        pattern = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
        self.encoding = tiktoken.Encoding(name="bytes", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
        self.encoded: list[str] = []

    def encode_ordinary(self, text: str) -> list[int]:
        self.encoded.append(text)
        return self.encoding.encode_ordinary(text)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> _CountingEncoding:
    pytest.importorskip("tiktoken")
    encoding = _CountingEncoding()
    monkeypatch.setattr(_tokens, "_encoding", encoding)
    monkeypatch.setattr(_tokens, "_counted", {})
    return encoding


def _exact(encoding: _CountingEncoding, prompt: Any, framing: int = 4) -> int:
    """What the prompt's estimate must be: every text tiktoken-counted afresh, and the framing of each message (a
    dict in the prompt's list, not a content part within a message)."""
    if isinstance(prompt, str):
        return len(encoding.encoding.encode_ordinary(prompt)) if prompt else 0
    if isinstance(prompt, dict):
        return framing + sum(_exact(encoding, value, 0) for value in prompt.values())
    return sum(_exact(encoding, item, framing) for item in prompt)


@pytest.mark.parametrize("shape", ["openai", "anthropic"])
def test_a_chat_resending_its_history_encodes_each_text_once(counting: _CountingEncoding, shape: str) -> None:
    system = "You answer questions about the weather in the cities of Portugal. " * 40
    history: list[dict[str, Any]] = []
    for turn in range(12):
        history.append({"role": "user", "content": f"And what about the rain in city number {turn} tomorrow? " * 3})
        history.append({"role": "assistant", "content": [{"type": "text", "text": f"Rain in {turn}: none. " * 8}]})
        prompt: Any = [{"role": "system", "content": system}, *history] if shape == "openai" else (system, history)
        assert estimate_prompt_tokens(prompt) == _exact(counting, prompt)
    # each text once (roles too: tiktoken takes microseconds for a word), where twelve turns re-send them 168 times
    assert len(counting.encoded) == len(set(counting.encoded))
    assert len([text for text in counting.encoded if len(text) >= 100]) == 1 + len(history)  # the system prompt too
    assert all(type(a) is int and type(b) is int for a, b in _tokens._counted)  # the cache holds no prompt text


def test_the_count_cache_stays_bounded_and_exact(counting: _CountingEncoding, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tokens, "_MAX_COUNTED", 8)
    texts = [f"Message {number} about something else entirely, long enough to be remembered." for number in range(50)]
    for text in texts * 2:
        assert estimate_prompt_tokens([{"role": "user", "content": text}]) == _exact(
            counting, {"role": "user", "content": text}
        )
        assert len(_tokens._counted) <= 8
