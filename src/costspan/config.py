"""Instrumentation options, from keyword arguments or ``COSTSPAN_*`` environment variables (so that the
``opentelemetry-instrument`` launcher can be configured without code). Keyword arguments win.

Every option is one field of :class:`Options`, declared with :func:`option`: its default, how a keyword value is
checked and how its ``COSTSPAN_<NAME>`` variable is read. A bad keyword fails at ``instrument()`` with a TypeError
or ValueError naming the option and what it accepts; an unusable variable (or an unknown ``COSTSPAN_*`` one) is
logged once and the default applies, so a launched application is never left uninstrumented by a typo.
"""

from __future__ import annotations

import logging
import os
import reprlib
from collections.abc import Callable, Collection, Mapping, Set
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from ._suggest import did_you_mean
from .budgets import Budget
from .context import DEFAULT_BAGGAGE_KEYS, attribute_name
from .ledger._paths import LedgerOption, check_not_a_word, parse_env
from .pricing import PriceConfig, read_prices

__all__ = ["DEFAULT_MAX_OUTPUT_TOKENS", "Options", "option"]

DEFAULT_MAX_OUTPUT_TOKENS = 4096
"""The output a budget reserves for a request that sets no output bound."""

_logger = logging.getLogger("costspan")

_T = TypeVar("_T")
_PREFIX = "COSTSPAN_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 80

_ALIAS_EXAMPLE = "{'prod-gpt': 'gpt-4.1'}"

_INSTRUMENTOR_KEYWORDS = ("tracer_provider", "meter_provider")
"""Keywords ``instrument()`` takes besides the options (BaseInstrumentor's own are consumed before)."""


@dataclass(frozen=True, slots=True)
class _Spec:
    check: Callable[[Any], Any]
    parse: Callable[[str], Any] | None
    default_text: str
    env_level: int


def option(
    default: _T,
    check: Callable[[Any], _T],
    parse: Callable[[str], _T] | None = None,
    *,
    default_text: str | None = None,
    env_level: int = logging.WARNING,
) -> _T:
    """Declare an option (a field of :class:`Options`).

    ``check`` turns a keyword value into the option's value, raising TypeError or ValueError whose text says
    what was given and what is accepted; ``parse`` does the same for the ``COSTSPAN_<NAME>`` variable's text
    (None: no variable). ``default_text`` says what applies when the variable is unusable; ``env_level`` is the
    level of that log record.
    """
    spec = _Spec(check, parse, default_text or repr(default), env_level)
    # A factory, so that immutable but unhashable defaults (a MappingProxyType) are allowed.
    return field(default_factory=lambda: default, metadata={"costspan": spec})


def _attribute_names(value: object) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Collection) or isinstance(value, Mapping):
        raise TypeError(f"got {_repr.repr(value)}, expected a list of attribute names such as ['user.id', 'team']")
    if bad := [name for name in value if not isinstance(name, str) or not name]:
        raise TypeError(f"got {_repr.repr(bad[0])} in the list, expected attribute names (non-empty strings)")
    return tuple(attribute_name(name) for name in value)


def _parse_attribute_names(text: str) -> tuple[str, ...]:
    return tuple(attribute_name(name.strip()) for name in text.split(",") if name.strip())


def _baggage_keys(value: object) -> tuple[str, ...]:
    return tuple(dict.fromkeys(attribute_name(name) for name in _attribute_names(value)))


def _parse_baggage_keys(text: str) -> tuple[str, ...]:
    return _baggage_keys(_parse_attribute_names(text))


def _aliases(value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError(f"got {_repr.repr(value)}, expected a mapping of name to priced model such as {_ALIAS_EXAMPLE}")
    if bad := [(k, v) for k, v in value.items() if not (isinstance(k, str) and isinstance(v, str) and k and v)]:
        raise TypeError(f"got the entry {_repr.repr(bad[0])}, expected names and models as non-empty strings")
    return MappingProxyType(dict(value))


def _parse_aliases(text: str) -> Mapping[str, str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    pairs = {item: item.partition("=") for item in items}
    if bad := [
        item for item, (name, equals, model) in pairs.items() if not (equals and name.strip() and model.strip())
    ]:
        which = f" ({bad[0]!r} is not one)" if len(items) > 1 else ""
        raise ValueError(
            f"got {text!r}, expected name=model pairs separated by commas, such as prod-gpt=gpt-4.1{which}"
        )
    return MappingProxyType({name.strip(): model.strip() for name, _, model in pairs.values()})


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"got {_repr.repr(value)}, expected True or False")
    return value


def _parse_flag(text: str) -> bool:
    word = text.strip().lower()
    if word not in _TRUE | _FALSE:
        raise ValueError(f"got {text!r}, expected true or false (or 1/0, yes/no, on/off)")
    return word in _TRUE


def _parse_price_file(text: str) -> PriceConfig:
    return read_prices(Path(text))


def _budgets(value: object) -> tuple[Budget, ...]:
    budgets = (value,) if isinstance(value, Budget) else value
    if isinstance(budgets, (str, bytes, Mapping)) or not isinstance(budgets, Collection):
        raise TypeError(f"got {_repr.repr(value)}, expected a list of costspan.Budget objects")
    if bad := [budget for budget in budgets if not isinstance(budget, Budget)]:
        raise TypeError(f"got {_repr.repr(bad[0])} in the list, expected costspan.Budget objects")
    names = [budget.name for budget in budgets]
    if len(set(names)) != len(names):
        raise ValueError(f"got two budgets of the same name in {names}, expected distinct names (Budget(name=...))")
    return tuple(budgets)


def _ledger(value: object) -> LedgerOption:
    if isinstance(value, str):
        check_not_a_word(value, "True (the default path) or False (no ledger)")
    if isinstance(value, (bool, str, os.PathLike)):
        return value
    raise TypeError(
        f"got {_repr.repr(value)}, expected the ledger's path or URL, True (the default path) or False (none)"
    )


def _token_count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TypeError(f"got {_repr.repr(value)}, expected a positive whole number of tokens")
    return value


def _parse_token_count(text: str) -> int:
    try:
        return _token_count(int(text))
    except (TypeError, ValueError):
        raise ValueError(f"got {text!r}, expected a positive whole number of tokens") from None


@dataclass(frozen=True, slots=True)
class Options:
    """What ``costspan.instrument(...)`` accepts, each also read from its ``COSTSPAN_<NAME>`` variable."""

    metric_attributes: tuple[str, ...] = option((), _attribute_names, _parse_attribute_names, default_text="none")
    """Attribution keys (span attribute names, e.g. ``user.id``) also put on metrics; the cardinality is the user's
    choice. Env: ``COSTSPAN_METRIC_ATTRIBUTES=user.id,team``."""
    prices: PriceConfig | None = option(
        None,
        read_prices,
        _parse_price_file,
        default_text="genai-prices' prices, without overrides",
        env_level=logging.ERROR,
    )
    """A prices file (JSON or TOML) or mapping of custom prices, aliases and discounts (see
    :mod:`costspan.pricing`), checked when given. Env: ``COSTSPAN_PRICES=/path/prices.toml``."""
    model_aliases: Mapping[str, str] = option(MappingProxyType({}), _aliases, _parse_aliases, default_text="no aliases")
    """Model or deployment name -> priced model, e.g. an Azure deployment ``{"prod-gpt": "gpt-4.1"}``.
    Env: ``COSTSPAN_MODEL_ALIASES=prod-gpt=gpt-4.1,other=gpt-4.1-mini``."""
    stream_usage: bool = option(True, _flag, _parse_flag, default_text="true")
    """Ask OpenAI chat and completion streams for their usage chunk when the caller did not, and hide that chunk
    from the caller. Env: ``COSTSPAN_STREAM_USAGE=false`` turns it off."""
    budgets: tuple[Budget, ...] = option((), _budgets, default_text="no budgets")
    """:class:`costspan.Budget` objects every call must fit (code only)."""
    default_max_output_tokens: int = option(
        DEFAULT_MAX_OUTPUT_TOKENS, _token_count, _parse_token_count, default_text=str(DEFAULT_MAX_OUTPUT_TOKENS)
    )
    """The output a budget reserves for a request that sets no ``max_tokens`` (or ``max_completion_tokens`` /
    ``max_output_tokens``); a stream that outgrows it extends its reservation.
    Env: ``COSTSPAN_DEFAULT_MAX_OUTPUT_TOKENS=8192``."""
    attribution_from_baggage: bool = option(False, _flag, _parse_flag, default_text="false")
    """Read the ``baggage_keys`` from W3C baggage for a call whose attribution does not set them, so that a user id
    set at the edge of the system (``costspan.attribution(user_id=..., propagate=True)``) attributes the calls of
    every service downstream. Baggage comes from clients too: see :mod:`costspan.context` before turning it on.
    Env: ``COSTSPAN_ATTRIBUTION_FROM_BAGGAGE=true``."""
    baggage_keys: tuple[str, ...] = option(
        DEFAULT_BAGGAGE_KEYS, _baggage_keys, _parse_baggage_keys, default_text=", ".join(DEFAULT_BAGGAGE_KEYS)
    )
    """The only baggage keys read as attribution (attribute names, or keywords: ``user_id`` is ``user.id``); other
    entries are ignored and counted. Env: ``COSTSPAN_BAGGAGE_KEYS=user.id,tenant``."""
    tokenizer_download: bool = option(False, _flag, _parse_flag, default_text="false")
    """Let tiktoken download its encoding (from OpenAI's public blob store) when it is not on this machine yet; by
    default costspan uses it only when already cached (``TIKTOKEN_CACHE_DIR``) and otherwise estimates tokens from
    characters, so that instrumenting opens no connection. Env: ``COSTSPAN_TOKENIZER_DOWNLOAD=true``."""
    capture_content: bool | None = option(None, _flag, default_text="off")
    """Put message content on spans (``gen_ai.input.messages``, ``gen_ai.system_instructions``,
    ``gen_ai.output.messages``; see :mod:`costspan._content`). None (the default) follows
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, which is off unless set."""
    ledger: LedgerOption = option(
        None,
        _ledger,
        parse_env,
        default_text="a ledger only where costspan sets up the providers",
        env_level=logging.ERROR,
    )
    """The usage ledger: an SQLite file's path or a ``postgresql://`` URL, ``True`` for the default path, ``False``
    for none; None (the default) writes it at the default path only when costspan sets up the OpenTelemetry
    providers itself (see :mod:`costspan.ledger`). Env: ``COSTSPAN_LEDGER=/path/ledger.db``,
    ``COSTSPAN_LEDGER=postgresql://user:password@host/db``, ``COSTSPAN_LEDGER=off``."""

    @classmethod
    def load(cls, kwargs: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> Options:
        """The options from ``kwargs`` (``None`` is not given), else the environment, else the defaults.

        Raises TypeError for an unknown keyword and TypeError or ValueError for an unusable value; logs an
        unusable or unknown ``COSTSPAN_*`` variable once.
        """
        specs = {f.name: f.metadata["costspan"] for f in fields(cls)}
        _check_keywords(kwargs.keys(), [*specs, *_INSTRUMENTOR_KEYWORDS])
        _warn_unknown_variables(environ, {_variable(name) for name, spec in specs.items() if spec.parse})
        values: dict[str, Any] = {}
        for name, spec in specs.items():
            given = kwargs.get(name)
            if given is not None:
                values[name] = _from_keyword(name, spec, given)
            elif spec.parse is not None and (text := environ.get(_variable(name), "").strip()):
                try:
                    values[name] = spec.parse(text)
                except (TypeError, ValueError) as exc:
                    _logger.log(
                        spec.env_level,
                        "costspan: %s: %s; using the default (%s)",
                        _variable(name),
                        exc,
                        spec.default_text,
                    )
        return cls(**values)


def _variable(name: str) -> str:
    return _PREFIX + name.upper()


def _from_keyword(name: str, spec: _Spec, value: object) -> Any:
    try:
        return spec.check(value)
    except (TypeError, ValueError) as exc:
        error = TypeError if isinstance(exc, TypeError) else ValueError  # not a subclass: theirs take other arguments
        raise error(f"costspan: option {name}: {exc}") from None


def _check_keywords(given: Collection[str], valid: list[str]) -> None:
    for name in given:
        if name not in valid:
            raise TypeError(
                f"costspan: unknown option {name!r}{did_you_mean(name, valid)}; the options are {', '.join(valid)}"
            )


def _warn_unknown_variables(environ: Mapping[str, str], known: Set[str]) -> None:
    for variable in environ:
        if variable.startswith(_PREFIX) and variable not in known:
            _logger.warning(
                "costspan: unknown environment variable %s%s, ignored; costspan reads %s",
                variable,
                did_you_mean(variable, known),
                ", ".join(sorted(known)),
            )
