"""Binance spot: the sans-I/O parser and the symbol map."""

from ._parse import DEFAULT_SYMBOLS, parse_depth_snapshot, parse_frame, parse_message
from ._symbols import DEFAULT_QUOTE_ASSETS, SymbolMap

__all__ = [
    "DEFAULT_QUOTE_ASSETS",
    "DEFAULT_SYMBOLS",
    "SymbolMap",
    "parse_depth_snapshot",
    "parse_frame",
    "parse_message",
]
