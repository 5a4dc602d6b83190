"""Today's LLM spend from Python: the summary `costspan report` prints, with its budget line and an alert line, for
a cron job or a chat message.

    python examples/daily_summary.py

`print_daily_summary()` is the part to keep: it reads the ledger `costspan.instrument()` writes (COSTSPAN_LEDGER,
or the per-user default). So that there is something to sum up without an API key, the script first logs a few
calls by three users of two teams against costspan's local provider server, into a temporary ledger (or the one
COSTSPAN_LEDGER names).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

import openai

import costspan
import costspan.ledger
from costspan.testing import ProviderServer, Reply

DAILY_BUDGET_USD = 0.05

# (user, team, model, input tokens, output tokens): the calls logged, with the usage the local server reports.
CALLS = [
    ("u-ana", "search", "gpt-4.1", 1800, 350),
    ("u-ana", "search", "gpt-4.1-mini", 2400, 500),
    ("u-ben", "search", "gpt-4.1", 3200, 900),
    ("u-ben", "search", "o4-mini", 900, 2600),
    ("u-cy", "support", "gpt-4.1-mini", 1200, 150),
    ("u-cy", "support", "gpt-4.1-mini", 1500, 220),
    ("u-cy", "support", "gpt-4.1", 2600, 400),
]


def print_daily_summary() -> None:
    today = costspan.ledger.report(budget_usd=DAILY_BUDGET_USD)  # today (local time), by model
    print(today)  # the summary, the budget line, and from half the budget spent a warning line
    print()
    print(costspan.ledger.report(by="team"))  # by any attribution key
    print()
    share = today.budget_share or 0.0
    if share >= 0.8:  # the line to send to the team's chat
        print(f"ALERT: {share:.0%} of today's ${DAILY_BUDGET_USD:.2f} LLM budget spent by {today.total.requests} calls")


@contextlib.contextmanager
def calls_logged() -> Iterator[None]:
    """CALLS made with the real OpenAI client against the local server, each attributed to its user and team."""
    with ProviderServer() as server, tempfile.TemporaryDirectory(prefix="costspan-daily-") as directory:
        os.environ.setdefault("COSTSPAN_LEDGER", os.path.join(directory, "ledger.db"))
        costspan.instrument()
        with openai.OpenAI(base_url=server.openai_base_url, api_key="sk-local") as client:
            for user, team, model, input_tokens, output_tokens in CALLS:
                total = input_tokens + output_tokens
                usage = {"prompt_tokens": input_tokens, "completion_tokens": output_tokens, "total_tokens": total}
                server.push(Reply(usage=usage))
                with costspan.attribution(user_id=user, team=team):
                    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "..."}])
        costspan.uninstrument()  # writes the ledger's last rows and closes it
        yield


if __name__ == "__main__":
    with calls_logged():
        print_daily_summary()
