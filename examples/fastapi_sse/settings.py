"""The service's configuration, from environment variables, checked once at startup."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Settings"]

DEFAULT_DAILY_BUDGET_USD = 0.50


@dataclass(frozen=True)
class Settings:
    """What the service needs to know.

    ``daily_budget_usd``: each user's spend limit per UTC day (``DAILY_BUDGET_USD``). ``redis_url``: where budgets
    are kept (``REDIS_URL``), shared by every worker and replica; None keeps them in this process's memory, which
    suits one worker on a laptop and nothing else. The API keys and base URLs are the SDKs' own (None: the SDK reads
    ``ANTHROPIC_API_KEY`` / ``OPENAI_API_KEY`` and friends itself); the demo and the tests point them at
    ``costspan.testing``'s local provider server.
    """

    daily_budget_usd: float = DEFAULT_DAILY_BUDGET_USD
    redis_url: str | None = None
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            daily_budget_usd=_usd(environ.get("DAILY_BUDGET_USD"), "DAILY_BUDGET_USD"),
            redis_url=environ.get("REDIS_URL") or None,
        )

    @property
    def openai_configured(self) -> bool:
        """Whether OpenAI models can be served: the OpenAI client refuses to be built without a key."""
        return bool(self.openai_api_key or os.environ.get("OPENAI_API_KEY"))


def _usd(text: str | None, name: str) -> float:
    if text is None or not text.strip():
        return DEFAULT_DAILY_BUDGET_USD
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}={text!r} is not a positive amount of USD (such as 0.50)")
    return value
