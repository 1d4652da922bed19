"""Binance symbols (``NKNUSDT``) to canonical instruments (``NKN-USDT``) and back.

Binance writes a pair as base and quote glued together, so the split is not in the
symbol itself. :class:`SymbolMap` takes it from an explicit table when it has one
(built from ``/api/v3/exchangeInfo`` with :meth:`SymbolMap.from_exchange_info`), and
otherwise splits off the longest known quote asset: ``FDUSDUSDT`` is ``FDUSD-USDT``,
``ETHBTC`` is ``ETH-BTC``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

import attrs

from meltica_trio._errors import DecodeError
from meltica_trio.providers import _fields as f

DEFAULT_QUOTE_ASSETS: Final = (
    # Stablecoins and fiat first in spirit; order does not matter, the longest match wins.
    "USDT",
    "USDC",
    "FDUSD",
    "BUSD",
    "TUSD",
    "USDP",
    "DAI",
    "UST",
    "PAX",
    "BTC",
    "ETH",
    "BNB",
    "XRP",
    "TRX",
    "DOGE",
    "DOT",
    "EUR",
    "GBP",
    "TRY",
    "BRL",
    "AUD",
    "RUB",
    "UAH",
    "NGN",
    "ZAR",
    "PLN",
    "RON",
    "ARS",
    "JPY",
    "MXN",
    "COP",
    "CZK",
    "IDRT",
    "BIDR",
    "BKRW",
    "AEUR",
    "EURI",
)
"""Quote assets Binance spot lists, matched as symbol suffixes when no explicit entry
exists. An unlisted quote needs an explicit map (``SymbolMap.from_exchange_info``)."""


def _freeze(table: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType({k.upper(): v.upper() for k, v in table.items()})


def _by_length(assets: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({a.upper() for a in assets}, key=len, reverse=True))


@attrs.frozen
class SymbolMap:
    """Maps Binance symbols to canonical ``BASE-QUOTE`` instruments and back.

    Args:
        explicit: venue symbol -> canonical instrument; takes precedence over the
            suffix rule, in both directions.
        quote_assets: quote assets tried as suffixes, longest first.
    """

    explicit: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze)
    quote_assets: tuple[str, ...] = attrs.field(default=DEFAULT_QUOTE_ASSETS, converter=_by_length)
    _reverse: Mapping[str, str] = attrs.field(init=False, eq=False, repr=False)
    # Symbols seen before; a frame's symbol is resolved once, not once per frame.
    _cache: dict[str, str] = attrs.field(init=False, eq=False, repr=False, factory=dict)

    @_reverse.default
    def _reverse_default(self) -> Mapping[str, str]:
        return MappingProxyType({v: k for k, v in self.explicit.items()})

    @classmethod
    def from_exchange_info(cls, body: object) -> SymbolMap:
        """Build the explicit table from a ``GET /api/v3/exchangeInfo`` response body.

        Raises:
            DecodeError: the body is not an exchangeInfo document.
        """
        doc = f.obj(body, "")
        table: dict[str, str] = {}
        for i, entry in enumerate(f.array(f.get(doc, "symbols", ""), "symbols")):
            path = f"symbols[{i}]"
            item = f.obj(entry, path)
            base = f.text(item, "baseAsset", path)
            quote = f.text(item, "quoteAsset", path)
            table[f.text(item, "symbol", path)] = f"{base}-{quote}"
        return cls(table)

    def to_canonical(self, symbol: str, path: str = "") -> str:
        """``"NKNUSDT"`` -> ``"NKN-USDT"`` (case-insensitive).

        Raises:
            DecodeError: no explicit entry and no known quote asset ends the symbol.
        """
        try:
            return self._cache[symbol]
        except KeyError:
            pass
        upper = symbol.upper()
        canonical = self.explicit.get(upper)
        if canonical is None:
            for quote in self.quote_assets:
                if len(upper) > len(quote) and upper.endswith(quote):
                    canonical = f"{upper[: -len(quote)]}-{quote}"
                    break
            else:
                raise DecodeError(f"cannot split symbol {symbol!r}: unknown quote asset", path)
        self._cache[symbol] = canonical
        return canonical

    def to_venue(self, instrument: str) -> str:
        """``"NKN-USDT"`` -> ``"NKNUSDT"``, the symbol REST calls and streams use."""
        upper = instrument.upper()
        venue = self._reverse.get(upper)
        return venue if venue is not None else upper.replace("-", "")
