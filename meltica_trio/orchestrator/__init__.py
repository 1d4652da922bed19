"""The orchestrator: the windowed merge of one key across venues (DESIGN.md section 5)."""

from ._control import MergeControl
from ._merger import Emit, Merger
from ._rule import MERGEABLE_KINDS, MERGED_PROVIDER, MergeRule, RuleKey
from ._statistics import MergeStatistics
from ._top import consolidate, venue_top

__all__ = [
    "MERGEABLE_KINDS",
    "MERGED_PROVIDER",
    "Emit",
    "MergeControl",
    "MergeRule",
    "MergeStatistics",
    "Merger",
    "RuleKey",
    "consolidate",
    "venue_top",
]
