"""An application that knows nothing of costspan: `opentelemetry-instrument` instruments it as it starts
(README.md here). It calls each provider whose key is set: OpenAI, a plain call and an inline stream; Anthropic,
a plain call."""

from __future__ import annotations

import os

import anthropic
import openai

QUESTION = "In one sentence: why do LLM bills surprise teams?"


def main() -> None:
    if os.environ.get("OPENAI_API_KEY"):
        client = openai.OpenAI()
        reply = client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": QUESTION}])
        print(reply.choices[0].message.content)
        for chunk in client.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": QUESTION}], stream=True
        ):
            if chunk.choices:
                print(chunk.choices[0].delta.content or "", end="", flush=True)
        print()
    if os.environ.get("ANTHROPIC_API_KEY"):
        message = anthropic.Anthropic().messages.create(
            model="claude-haiku-4-5", max_tokens=200, messages=[{"role": "user", "content": QUESTION}]
        )
        print("".join(block.text for block in message.content if isinstance(block, anthropic.types.TextBlock)))


if __name__ == "__main__":
    main()
