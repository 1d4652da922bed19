"""OKX v5 public: the sans-I/O parser."""

from ._parse import parse_frame, parse_message

__all__ = ["parse_frame", "parse_message"]
