"""The local usage ledger: an SQLite file with one row per provider call, written by a span processor off the
request path, read by ``costspan report``.

``costspan.instrument()`` adds it on its own when it sets up the OpenTelemetry providers itself (nothing else
configured them); with providers configured by the application or a distro, it is added when asked for with
``instrument(ledger=PATH)`` or ``COSTSPAN_LEDGER=PATH``. ``COSTSPAN_LEDGER=off`` (or ``ledger=False``) turns it
off. Added by hand: ``tracer_provider.add_span_processor(LedgerProcessor(path))``.
"""

from ._paths import ENV, default_ledger_path, ledger_path
from ._processor import LedgerProcessor
from ._schema import SCHEMA_VERSION

__all__ = ["ENV", "SCHEMA_VERSION", "LedgerProcessor", "default_ledger_path", "ledger_path"]
