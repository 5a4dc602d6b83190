"""Estimates for what a provider did not count: characters per token without tiktoken's encoding loaded."""

from __future__ import annotations

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
