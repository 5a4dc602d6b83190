"""The ``costspan`` command line."""

from __future__ import annotations

import click

from .demo import run_demo

__all__ = ["main"]


@click.group()
@click.version_option(package_name="costspan")
def main() -> None:
    """costspan: what every LLM call cost, while it happens."""


@main.command()
def demo() -> None:
    """Make real SDK calls against a local server (no API key, nothing leaves this machine) and show each call's
    tokens and cost as costspan recorded them."""
    run_demo(click.echo)
