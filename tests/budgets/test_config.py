"""A budget configured wrongly fails where it is written, with a message naming the wrong value; a budget
configured rightly says what it is."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import uuid
from typing import Any

import pytest
import redis
import redis.asyncio
from budgets.helpers import RedisServer

import costspan
from costspan.budgets import Budget, BudgetExceededError, BudgetStoreError


def _case(case: str, error: type[Exception], message: str, **options: Any) -> Any:
    options.setdefault("limit_usd", 10)
    return pytest.param(options, error, message, id=case)


BAD = [
    _case("negative limit", ValueError, "limit_usd must be a positive, finite number of USD, not -5", limit_usd=-5),
    _case("zero limit", ValueError, "limit_usd must be a positive, finite number of USD, not 0.0", limit_usd=0.0),
    _case("NaN limit", ValueError, "limit_usd must be a positive, finite number of USD, not nan", limit_usd=math.nan),
    _case("infinite limit", ValueError, "positive, finite number of USD, not inf", limit_usd=math.inf),
    _case("limit as text", ValueError, "positive, finite number of USD, not '10'", limit_usd="10"),
    _case("limit as bool", ValueError, "positive, finite number of USD, not True", limit_usd=True),
    _case("limit past exact counting", ValueError, "limit_usd=10000000.0 is over the $9,007,199", limit_usd=1e7),
    _case(
        "unknown window",
        ValueError,
        "Budget window must be one of 'hour', 'day', 'week', 'month', None, not 'daily'",
        window="daily",
    ),
    _case("unknown timezone", ValueError, "timezone 'Mars/Olympus' is not a known IANA", timezone="Mars/Olympus"),
    _case("timezone path", ValueError, "timezone '../etc/passwd' is not a known IANA", timezone="../etc/passwd"),
    _case(
        "unparsable Redis URL",
        ValueError,
        "Budget store 'redis://:***@127.0.0.1:notaport/0' is not a Redis URL (Port could not be cast",
        store="redis://:pw@127.0.0.1:notaport/0",
    ),
    _case("URL of another scheme", ValueError, "'http://localhost' is not a Redis URL", store="http://localhost"),
    _case("URL without scheme", ValueError, "store 'localhost:6379' is not a Redis URL", store="localhost:6379"),
    _case("store of another kind", TypeError, "redis.asyncio.Redis / RedisCluster client, not 6379", store=6379),
    _case("threshold above 1", ValueError, "a fraction of the limit in (0, 1], not 1.5", thresholds=(0.5, 1.5)),
    _case("threshold 0", ValueError, "a fraction of the limit in (0, 1], not 0", thresholds=(0,)),
    _case("negative threshold", ValueError, "in (0, 1], not -0.5", thresholds=(-0.5,)),
    _case("NaN threshold", ValueError, "in (0, 1], not nan", thresholds=(math.nan,)),
    _case("thresholds as one number", TypeError, "a sequence of fractions in (0, 1], not 0.5", thresholds=0.5),
    _case("scope not a string", TypeError, "attribution attribute such as 'user.id', not 42", scope=42),
    _case("empty scope", TypeError, "attribution attribute such as 'user.id', not ''", scope=""),
    _case("unknown action", ValueError, "Budget action must be one of 'block', 'alert', not 'warn'", action="warn"),
    _case(
        "unknown on_store_error",
        ValueError,
        "Budget on_store_error must be one of 'allow', 'block', not 'ignore'",
        on_store_error="ignore",
    ),
    _case(
        "unknown on_unpriced",
        ValueError,
        "Budget on_unpriced must be one of 'allow', 'block', not 'zero'",
        on_unpriced="zero",
    ),
    _case(
        "on_threshold not callable",
        TypeError,
        "Budget on_threshold must be callable or None, not 'ops@example.com'",
        on_threshold="ops@example.com",
    ),
    _case(
        "zero reservation TTL",
        ValueError,
        "Budget reservation_ttl must be a positive, finite number of seconds, not 0",
        reservation_ttl=0,
    ),
    _case("empty name", ValueError, "Budget name must be a non-empty string, not ''", name=""),
    _case("clock not callable", TypeError, "Budget clock must be callable, not 1700000000.0", clock=1700000000.0),
]


@pytest.mark.parametrize(("options", "error", "message"), BAD)
def test_bad_configuration_fails_at_construction(options: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        Budget(**options)


def test_a_url_password_never_appears_in_errors() -> None:
    with pytest.raises(ValueError) as raised:
        Budget(10, store="redis://user:hunter2-DISTINCTIVE@[::1/0")
    assert "hunter2" not in str(raised.value)


def test_default_name_is_built_from_the_configuration() -> None:
    """Identically configured processes get the same name, hence the same state on a shared store."""
    assert Budget(10).name == "day:global:10usd"
    assert Budget(2.5, "hour", scope="user.id").name == "hour:user.id:2.5usd"
    assert Budget(100, None).name == "lifetime:global:100usd"
    assert Budget(10, "month", timezone="America/New_York").name == "month@America/New_York:global:10usd"
    assert Budget(10, name="team-cap").name == "team-cap"


def test_configuration_is_readable() -> None:
    budget = Budget(
        10, "week", scope="team", thresholds=(1.0, 0.25), action="alert", on_store_error="block", on_unpriced="block"
    )
    assert (budget.limit_usd, budget.window, budget.scope, budget.thresholds) == (10.0, "week", "team", (0.25, 1.0))
    assert (budget.action, budget.on_store_error, budget.on_unpriced) == ("alert", "block", "block")
    assert (budget.timezone, budget.reservation_ttl, budget.store_errors) == ("UTC", 900.0, 0)
    assert repr(budget) == "<Budget 'week:team:10usd' $10.000000 alert store=memory>"
    with pytest.raises(AttributeError):
        budget.limit_usd = 20  # type: ignore[misc]


def test_costspan_exports_the_budget() -> None:
    assert costspan.Budget is Budget
    assert costspan.BudgetExceededError is BudgetExceededError
    assert not issubclass(BudgetStoreError, BudgetExceededError)  # an outage is not "over budget"
    assert {"Budget", "BudgetError", "BudgetExceededError", "BudgetCheckError", "BudgetStoreError"} <= set(
        costspan.__all__
    )


def test_importing_costspan_or_a_memory_budget_loads_no_redis() -> None:
    code = "import sys, costspan; costspan.Budget(1.0).reserve(None, 0.1); print('redis' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ["False"]


def test_constructing_a_redis_budget_does_no_io() -> None:
    """A URL is parsed at construction; nothing connects until the first call (the host does not exist)."""
    budget = Budget(10, store="redis://no-such-host.invalid:6379/0")
    assert repr(budget) == "<Budget 'day:global:10usd' $10.000000 block store=redis://no-such-host.invalid:6379/0>"


@pytest.mark.parametrize("decode", [False, True], ids=["bytes", "str"])
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_client_of_either_kind_serves_sync_and_async_calls(
    kind: str, decode: bool, redis_server: RedisServer
) -> None:
    """Given a client, the budget uses it and derives the other kind from its connection settings."""
    module: Any = redis if kind == "sync" else redis.asyncio
    client = module.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=2, decode_responses=decode)
    budget = Budget(1.0, store=client, name=f"client-{uuid.uuid4()}")
    assert budget.settle(budget.reserve(None, 0.5), 0.5) == (0.5,)
    assert await budget.asettle(await budget.areserve(None, 0.25), 0.25) == ()
    assert (budget.spent(), await budget.aspent()) == (0.75, 0.75)
    assert repr(budget).endswith(f"store=redis://127.0.0.1:{redis_server.port}/0>")
    if kind == "async":
        await client.aclose()
    else:
        client.close()


async def test_unix_socket_url(redis_server: RedisServer) -> None:
    budget = Budget(1.0, store=redis_server.unix_url, name=f"unix-{uuid.uuid4()}")
    budget.settle(budget.reserve(None, 0.125), 0.125)
    await budget.asettle(await budget.areserve(None, 0.125), 0.125)
    assert budget.spent() == 0.25
