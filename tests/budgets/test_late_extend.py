"""An extend that reaches Redis only after its call was settled (its connection stalled: the client gave up on
it, the call went on unchecked and settled, and then the stalled request arrived) changes nothing: it must not
hold the budget again until the reservation's lifetime ends. (On 148ef11 it held its whole total again: reserved
1.5 after the call, until the reservation TTL.)"""

from __future__ import annotations

import time

from budgets.helpers import PASSWORD, RedisServer, SlowProxy, Way

from costspan.budgets import Budget


async def test_an_extend_arriving_after_the_settlement_holds_nothing(
    own_redis: RedisServer, slow_proxy: SlowProxy, way: Way
) -> None:
    name = f"late-extend-{way.is_async}-{time.time_ns()}"
    # The stream's process reaches Redis through a link that stalls; the settlement goes the direct way (the same
    # budget in another worker, or the same one once the link answered again: only the order matters).
    stalled = Budget(10.0, store=f"redis://:{PASSWORD}@127.0.0.1:{slow_proxy.port}/0", name=name)
    direct = Budget(10.0, store=own_redis.url, name=name)
    reservation = await way.reserve(stalled, None, 0.5)
    assert await way.extend(stalled, reservation, 0.5)  # Redis now knows the script: a late one runs at once
    slow_proxy.delay = 0.6
    assert await way.extend(stalled, reservation, 0.5)  # times out: the stream goes on (on_store_error="allow")
    await way.settle(direct, reservation, 1.25)
    assert (await way.spent(direct), await way.reserved(direct)) == (1.25, 0.0)
    time.sleep(1.5)  # the stalled extend has reached Redis by now
    slow_proxy.delay = 0.0
    assert (await way.spent(direct), await way.reserved(direct)) == (1.25, 0.0)
