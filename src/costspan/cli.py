"""The ``costspan`` command line: ``report`` (from the ledger), ``prices``, ``estimate`` and ``demo``.

Errors are one line (``Error: ...``) with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from .demo import run_demo
from .ledger import ENV
from .ledger._render import render_csv, render_json, render_table
from .ledger._report import ReportError, ledger_file, period_of, summarize
from .ledger._summary import budget_lines, render_plain
from .pricing import PriceConfig, Pricing, read_prices

__all__ = ["main"]

_FORMATS = ("table", "csv", "json")
PRICES_ENV = "COSTSPAN_PRICES"


@click.group()
@click.version_option(package_name="costspan")
def main() -> None:
    """costspan: what every LLM call cost, while it happens."""


@main.command()
@click.option(
    "--by",
    "by",
    default="model",
    show_default=True,
    metavar="KEY",
    help="Group by model, provider, user, day, operation, request (the most expensive requests, with their trace "
    "ids), or an attribution key (e.g. team).",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    metavar="N",
    help="Only the N most expensive lines (default: all; 10 with --by request). The total is the period's.",
)
@click.option("--date", "day", metavar="YYYY-MM-DD", help="One day (default: today).")
@click.option("--since", metavar="YYYY-MM-DD", help="First day of a range.")
@click.option("--until", metavar="YYYY-MM-DD", help="Last day of a range (default: today).")
@click.option("--last", metavar="N{h,d,w}", help="The last hours, days or weeks, e.g. 24h, 7d, 2w.")
@click.option("--utc", is_flag=True, help="Days in UTC rather than local time.")
@click.option("--budget", type=float, metavar="USD", help="Show the share of this budget spent; warn from 50%.")
@click.option(
    "--format",
    "output",
    default="table",
    show_default=True,
    metavar="|".join(_FORMATS),
    help="table (plain text when piped), csv or json.",
)
@click.option(
    "--ledger",
    "path",
    metavar="PATH|URL",
    help=f"The ledger file, or a postgresql:// URL (default: ${ENV}, or the per-user default).",
)
def report(
    by: str,
    top: int | None,
    day: str | None,
    since: str | None,
    until: str | None,
    last: str | None,
    utc: bool,
    budget: float | None,
    output: str,
    path: str | None,
) -> None:
    """Spend and tokens from the ledger, per model (or --by), for a day or a range."""
    with _one_line_errors():
        if output not in _FORMATS:
            raise ReportError(f"--format {output!r}: use one of {', '.join(_FORMATS)}")
        if budget is not None and not budget > 0:
            raise ReportError(f"--budget {budget:g}: expected a positive number of USD")
        period = period_of(day=day, since=since, until=until, last=last, utc=utc)
        summary = summarize(ledger_file(path, "--ledger PATH|URL names a ledger"), by, period, budget, top=top)
    if output == "json":
        click.echo(render_json(summary), nl=False)
    elif output == "csv":
        click.echo(render_csv(summary), nl=False)
        for line in budget_lines(summary):  # CSV holds only rows: the budget goes to stderr, still seen in a pipe
            click.echo(line, err=True)
    else:
        _print_table(summary)


def _print_table(summary: Any) -> None:
    from rich.console import Console

    console = Console()
    if console.is_terminal:
        console.print(render_table(summary, console.width))
    else:
        click.echo(render_plain(summary), nl=False)


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except (ReportError, ValueError, OSError) as failure:
        raise click.ClickException(str(failure)) from None


@contextlib.contextmanager
def _quiet_pricing() -> Iterator[None]:
    # The command says itself that a model is unpriced; the pricing engine's log line would say it twice.
    logger = logging.getLogger("costspan")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _prices_option(command: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--prices",
        "prices_file",
        metavar="FILE",
        help=f"Custom prices (TOML or JSON), as the application's prices= (default: ${PRICES_ENV}).",
    )(command)


def _pricing(prices_file: str | None) -> tuple[Pricing, PriceConfig | None, str]:
    """The prices the application would charge: genai-prices with the --prices (else $COSTSPAN_PRICES) file's
    overrides (also returned), and a line saying which source that is."""
    source, name = (f"--prices {prices_file}", prices_file) if prices_file else (None, os.environ.get(PRICES_ENV))
    if not name:
        return Pricing(), None, f"Prices: genai-prices (no price file: --prices FILE or {PRICES_ENV} adds one)"
    source = source or f"{PRICES_ENV}={name}"
    try:
        config = read_prices(name)
    except (TypeError, ValueError) as failure:
        raise click.ClickException(f"{source}: {failure}") from None
    return Pricing(config), config, f"Prices: genai-prices with overrides from {source}"


def _provider_of(model: str, config: PriceConfig | None) -> str:
    """The provider a model's calls go to: the one the price file gives it, else what its name says."""
    from ._estimate import infer_provider

    if config is not None:
        model = config.aliases.get(model, model)
        given = [provider for provider, name in config.overrides if name == model and provider]
        if given:
            return given[0]
    return infer_provider(model)


@main.command()
@click.argument("model")
@click.option("--provider", help="gen_ai.provider.name, e.g. openai, anthropic, aws.bedrock (default: from the name).")
@_prices_option
def prices(model: str, provider: str | None, prices_file: str | None) -> None:
    """The prices costspan charges MODEL: the matched entry, its source, every rate and tier."""
    from ._price_data import canonical_provider

    pricing, config, used = _pricing(prices_file)
    provider = provider or _provider_of(model, config)
    with _quiet_pricing():
        price = pricing.resolve(provider, model)
        if price is None:
            raise click.ClickException(
                f"no price known for {model!r} on {provider!r}: its calls are reported unpriced ({used})"
            )
        service_tiers = _SERVICE_TIERS.get(canonical_provider(provider), ("batch",))
        tiers = {tier: pricing.resolve(provider, model, tier) for tier in service_tiers}
    click.echo(f"{model} on {provider}: price entry {price.model!r}, {price.source}")
    click.echo(used)
    click.echo("USD per million tokens:")
    for line in _rate_lines(price.rates):
        click.echo(f"  {line}")
    for start, rates in price.tiers:
        click.echo(f"Above {start:,} input tokens: {_compact_rates(rates)}")
    for tier, tiered in tiers.items():
        if tiered is not None and tiered.rates != price.rates:
            click.echo(f"Service tier {tier}: {_compact_rates(tiered.rates)}")


_PER_CALL = {"web_search": "per web search", "request": "per request"}
_TIER_RATES = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
# The service tiers genai-prices prices apart, per provider (gen_ai.provider.name's genai-prices id).
_SERVICE_TIERS = {"openai": ("flex", "priority", "batch"), "azure": ("batch",), "anthropic": ("batch", "fast")}


def _rate_lines(rates: Any) -> list[str]:
    lines = []
    for field in fields(rates):
        value = getattr(rates, field.name)
        if field.name in _PER_CALL:
            lines.append(f"{_PER_CALL[field.name]:<16} ${value:g}")
        else:
            lines.append(f"{field.name.replace('_', ' '):<16} {value * 1e6:g}")
    return lines


def _compact_rates(rates: Any) -> str:
    """The token rates, USD per million tokens, on one line."""
    return ", ".join(f"{name.replace('_', ' ')} {getattr(rates, name) * 1e6:g}" for name in _TIER_RATES)


@main.command()
@click.option("--model", required=True, help="The model the call would use.")
@click.option("--prompt", help="The prompt text.")
@click.option("--messages", "messages_file", metavar="FILE.json", help="A JSON list of chat messages.")
@click.option("--max-output-tokens", type=int, help="The call's output limit: gives the worst-case cost.")
@click.option("--provider", help="gen_ai.provider.name (default: from the model name).")
@_prices_option
def estimate(
    model: str,
    prompt: str | None,
    messages_file: str | None,
    max_output_tokens: int | None,
    provider: str | None,
    prices_file: str | None,
) -> None:
    """A call's input tokens and cost before it is sent."""
    from ._estimate import estimate as estimate_call
    from ._tokens import load_tokenizer
    from .config import Options

    if (prompt is None) == (messages_file is None):
        raise click.ClickException("give the call's input as --prompt TEXT or --messages FILE.json (one of them)")
    if max_output_tokens is not None and max_output_tokens < 0:
        raise click.ClickException(f"--max-output-tokens {max_output_tokens}: expected a non-negative number of tokens")
    messages = prompt if prompt is not None else _read_messages(messages_file)  # type: ignore[arg-type]
    pricing, config, used = _pricing(prices_file)
    exact = load_tokenizer(timeout=10, allow_download=Options.load({}).tokenizer_download)
    with _quiet_pricing(), _one_line_errors():
        result = estimate_call(
            model,
            messages,
            provider=provider or _provider_of(model, config),
            max_output_tokens=max_output_tokens,
            pricing=pricing,
        )
    how = "tiktoken o200k_base" if exact else "about 4 characters a token"
    if result.priced:
        click.echo(f"Model: {model} on {result.provider}, priced as {result.price_model!r} ({result.price_source})")
    else:
        click.echo(f"Model: {model} on {result.provider}: no known price, so the cost is unpriced")
    click.echo(used)
    click.echo(f"Input tokens: {result.input_tokens:,} (estimated: {how})")
    if max_output_tokens is not None:
        click.echo(f"Max output tokens: {max_output_tokens:,}")
    if result.input_cost is not None:
        click.echo(f"Input cost: ${result.input_cost:.6f}")
    if result.worst_case_cost is not None:
        click.echo(f"Worst-case cost: ${result.worst_case_cost:.6f}")
    elif result.priced:
        click.echo("Worst-case cost: unbounded without --max-output-tokens")


def _read_messages(name: str) -> Any:
    try:
        messages = json.loads(Path(name).read_text(encoding="utf-8"))
    except OSError as failure:
        raise click.ClickException(f"--messages {name}: {failure.strerror}") from None
    except json.JSONDecodeError as failure:
        raise click.ClickException(f"--messages {name}: not JSON: {failure}") from None
    if isinstance(messages, dict) and "messages" in messages:
        messages = [{"role": "system", "content": messages["system"]}] * ("system" in messages) + messages["messages"]
    if not isinstance(messages, list):
        raise click.ClickException(f"--messages {name}: expected a JSON list of messages")
    return messages


@main.command()
def demo() -> None:
    """Make real SDK calls against a local server (no API key, nothing leaves this machine), show each call's
    tokens and cost as costspan recorded them, then the report of the ledger they were written to."""
    run_demo(click.echo)
