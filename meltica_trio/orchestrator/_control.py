"""The ConfigureMerge command, owned by the orchestrator's merger."""

from __future__ import annotations

import attrs

from meltica_trio._errors import ConfigError
from meltica_trio.bus import ConfigureMerge, Outcome

from ._merger import Merger
from ._rule import MergeRule, check_clash


def rule_of(command: ConfigureMerge) -> MergeRule:
    """The merge rule a ConfigureMerge command describes.

    Raises:
        ConfigError: a field is invalid.
    """
    return MergeRule(
        name=command.name,
        instrument=command.instrument,
        kind=command.kind,
        providers=command.providers,
        window=command.window,
        max_count=command.max_count,
    )


@attrs.define(eq=False)
class MergeControl:
    """Checks and applies ConfigureMerge against one merger."""

    merger: Merger

    def check(self, command: ConfigureMerge) -> str | None:
        """Why the rule cannot be configured (invalid, or clashing with another), or None."""
        try:
            rule = rule_of(command)
            check_clash((r for r in self.merger.rules() if r.key != rule.key), rule)
        except ConfigError as exc:
            return str(exc)
        return None

    def apply(self, command: ConfigureMerge) -> Outcome:
        """Add or replace the rule; an identical rule changes nothing."""
        rule = rule_of(command)
        replaced = self.merger.configure(rule)
        state = "unchanged" if replaced == rule else "replaced" if replaced else "added"
        return Outcome(True, None, (("rule", rule.describe()), ("state", state)))

    def merged_problem(self, instrument: str, name: str | None) -> str | None:
        """Why there is no merged view of ``instrument`` (by rule ``name`` if given)."""
        for rule in self.merger.rules():
            if rule.instrument == instrument and (name is None or rule.name == name):
                return None
        wanted = f"named {name!r} " if name else ""
        return f"no merge rule {wanted}for {instrument!r}; configure one first"
