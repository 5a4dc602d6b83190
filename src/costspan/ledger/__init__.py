"""The usage ledger: one row per provider call in an SQLite file (or, for many processes and hosts, a PostgreSQL
database named by a ``postgresql://`` URL), written by a span processor off the request path, read by
``costspan report`` and :func:`report`.

``costspan.instrument()`` adds it on its own when it sets up the OpenTelemetry providers itself (nothing else
configured them); with providers configured by the application or a distro, it is added when asked for with
``instrument(ledger=PATH)`` or ``COSTSPAN_LEDGER=PATH``. ``COSTSPAN_LEDGER=off`` (or ``ledger=False``) turns it
off. Added by hand: ``tracer_provider.add_span_processor(LedgerProcessor(path))``.

From Python, ``print(costspan.ledger.report(budget_usd=5))`` prints today's summary as ``costspan report`` does,
and the returned :class:`Summary` holds its numbers.
"""

from ._paths import ENV, default_ledger_path, ledger_path
from ._processor import LedgerProcessor
from ._report import Line, ReportError, Summary, report
from ._schema import SCHEMA_VERSION

__all__ = [
    "ENV",
    "SCHEMA_VERSION",
    "LedgerProcessor",
    "Line",
    "ReportError",
    "Summary",
    "default_ledger_path",
    "ledger_path",
    "report",
]
