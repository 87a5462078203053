"""Levers: what a CSM can actually do about an account, declared as data.

Each lever lists the registry features it changes and how. The what-if route reads these
declarations and nothing else, so a lever never touches a feature it does not declare, and
adding a lever is a change here, not in the route. Every change reads the ORIGINAL vector
(order never matters) and only ever moves a feature in the direction the lever promises.

Kinds of change:
- ``Set(feature, value)``: the feature becomes ``value`` (e.g. exec_sponsor_active = True).
- ``RaiseTo(feature)``: the feature becomes max(current, the lever's value): "raise seat
  utilisation to 70 %" never lowers an account already above 70 %.
- ``Move(source, target)``: a share (the lever's value) of ``source`` moves into ``target``
  (days of the low tier become days of the mid tier; the total stays the same).
- ``SubtractFeature(feature, by)``: the feature loses the value of ``by`` (overdue bugs lose
  the overdue high-severity ones that the lever resolves), never below zero.
- ``CopyIfMissing(feature, source)``: when the feature is null it takes the value of
  ``source`` (an account that activates now gets days_to_activation = its window: the
  conservative "just in time").

A lever may also be conditional: ``Lever.reach`` says whether the account can still get what
the lever promises. ``complete_activation`` is in reach only while the activation window is
open: ``activated`` means activated WITHIN the window (domain §2), which no action makes true
once the window has closed, so a gain from it there could never show in a real score. Out of
reach, the lever changes nothing and says why (:meth:`Lever.out_of_reach`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["up", "down", "either"]


@dataclass(frozen=True)
class Set:
    feature: str
    value: bool | float
    direction: Direction

    @property
    def features(self) -> tuple[str, ...]:
        return (self.feature,)

    def apply(self, vector: Mapping[str, Any], value: float | None) -> dict[str, Any]:
        return {self.feature: self.value}


@dataclass(frozen=True)
class RaiseTo:
    feature: str
    direction: Direction = "up"

    @property
    def features(self) -> tuple[str, ...]:
        return (self.feature,)

    def apply(self, vector: Mapping[str, Any], value: float | None) -> dict[str, Any]:
        assert value is not None
        current = _number(vector.get(self.feature))
        return {self.feature: value if current is None else max(current, value)}


@dataclass(frozen=True)
class Move:
    source: str
    target: str
    direction: Direction = "up"  # of the target; the source goes down

    @property
    def features(self) -> tuple[str, ...]:
        return (self.source, self.target)

    def apply(self, vector: Mapping[str, Any], value: float | None) -> dict[str, Any]:
        share = 1.0 if value is None else value
        source = _number(vector.get(self.source))
        if source is None or source == 0:
            return {}
        moved = source * share
        target = _number(vector.get(self.target)) or 0.0
        return {self.source: source - moved, self.target: target + moved}


@dataclass(frozen=True)
class SubtractFeature:
    feature: str
    by: str
    direction: Direction = "down"

    @property
    def features(self) -> tuple[str, ...]:
        return (self.feature,)

    def apply(self, vector: Mapping[str, Any], value: float | None) -> dict[str, Any]:
        current, by = _number(vector.get(self.feature)), _number(vector.get(self.by))
        if current is None or not by:
            return {}
        return {self.feature: max(0.0, current - by)}


@dataclass(frozen=True)
class CopyIfMissing:
    feature: str
    source: str
    direction: Direction = "either"

    @property
    def features(self) -> tuple[str, ...]:
        return (self.feature,)

    def apply(self, vector: Mapping[str, Any], value: float | None) -> dict[str, Any]:
        if _number(vector.get(self.feature)) is not None:
            return {}
        source = _number(vector.get(self.source))
        return {} if source is None else {self.feature: source}


Change = Set | RaiseTo | Move | SubtractFeature | CopyIfMissing


@dataclass(frozen=True)
class WhileActivationWindowOpen:
    """In reach while the account's activation window is open (or it activated within it:
    then there is nothing to change, which is not "out of reach"). Closed: the account is
    ``past_window_not_activated``, or ``tenure_days`` (as_of - signed_at) has reached
    ``activation_window_days``, the features' own rule (an account whose activation is
    unknown, signed before the usage history, is out of reach too once its window closed)."""

    def out_of_reach(self, vector: Mapping[str, Any]) -> str | None:
        if _number(vector.get("activated")) == 1.0:
            return None
        window = _number(vector.get("activation_window_days"))
        tenure = _number(vector.get("tenure_days"))
        closed = _number(vector.get("past_window_not_activated")) == 1.0 or (
            window is not None and tenure is not None and tenure >= window)
        if not closed:
            return None
        named = ("its activation window" if window is None
                 else f"its {window:.0f}-day activation window")
        late = _number(vector.get("days_to_activation"))
        if late is not None:
            return (f"it activated {late:.0f} days after signing, after {named} had closed; "
                    "activated within the window can no longer become true")
        return f"{named} has closed; activated within the window can no longer become true"


#: The conditions a lever may declare (a union as more are needed).
Reach = WhileActivationWindowOpen


@dataclass(frozen=True)
class LeverValue:
    """What the caller passes as ``value``: nothing (the lever is on/off) or a number."""

    kind: Literal["none", "number"]
    minimum: float = 0.0
    maximum: float = 1.0
    default: float | None = None
    unit: str = ""
    description: str = ""

    @property
    def required(self) -> bool:
        return self.kind == "number" and self.default is None


@dataclass(frozen=True)
class Lever:
    """One thing a CSM can do, and exactly which features it changes."""

    name: str
    description: str
    changes: tuple[Change, ...]
    value: LeverValue = LeverValue("none")
    #: When the account can still get what the lever promises (None: always).
    reach: Reach | None = None

    @property
    def features(self) -> tuple[str, ...]:
        """Every feature this lever may change (nothing else ever changes)."""
        return tuple(dict.fromkeys(f for c in self.changes for f in c.features))

    @property
    def target_is_value(self) -> bool:
        """The lever's value is a target the feature is raised to ("to 70 %"), not an amount."""
        return self.value.kind == "number" and any(isinstance(c, RaiseTo) for c in self.changes)

    def out_of_reach(self, vector: Mapping[str, Any]) -> str | None:
        """Why this account can no longer get what the lever promises, or None."""
        return None if self.reach is None else self.reach.out_of_reach(vector)

    def apply(self, vector: Mapping[str, Any], value: float | None = None) -> dict[str, Any]:
        """The changed features only, computed from the original ``vector``; nothing when
        the lever is out of reach for this account."""
        if self.out_of_reach(vector) is not None:
            return {}
        if self.value.kind == "number" and value is None:
            value = self.value.default
        out: dict[str, Any] = {}
        for change in self.changes:
            out.update(change.apply(vector, value))
        return out


_SHARE = LeverValue("number", 0.0, 1.0, 1.0, "share", "share of the low-tier days moved (0-1)")

LEVERS: tuple[Lever, ...] = (
    Lever(
        "complete_activation",
        "Get the account activated while its activation window is open: it runs its "
        "business in the product.",
        (
            Set("activated", True, "up"),
            Set("past_window_not_activated", False, "down"),
            CopyIfMissing("days_to_activation", "activation_window_days"),
        ),
        reach=WhileActivationWindowOpen(),
    ),
    Lever(
        "raise_tier_mix",
        "Move daily activity from the low tier to the mid tier (value: share of low days).",
        (Move("tier_low_days_30d", "tier_mid_days_30d"),),
        _SHARE,
    ),
    Lever(
        "exec_sponsor_active",
        "Get the customer's executive sponsor using the product regularly.",
        (Set("exec_sponsor_active", True, "up"),),
    ),
    Lever(
        "core_process_live",
        "Get the customer's core business process running in the product.",
        (Set("core_process_live", True, "up"),),
    ),
    Lever(
        "resolve_high_bugs",
        "Resolve every open high-severity bug.",
        (
            Set("open_high_bugs", 0.0, "down"),
            Set("overdue_high_bugs", 0.0, "down"),
            SubtractFeature("overdue_bugs", "overdue_high_bugs"),
        ),
    ),
    Lever(
        "raise_seat_utilization",
        "Raise seat utilisation over 30 days to the given share (never lowers it).",
        (RaiseTo("seat_utilization_30d"),),
        LeverValue("number", 0.0, 1.0, None, "share", "target share of seats used (0-1)"),
    ),
)

_BY_NAME = {lever.name: lever for lever in LEVERS}


def get_lever(name: str) -> Lever:
    """The lever called ``name``; KeyError lists the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown lever {name!r}; known: {', '.join(_BY_NAME)}") from None


def lever_names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def change_direction(change: Change, feature: str) -> Direction:
    """Which way ``change`` moves ``feature`` (a Move lowers its source, raises its target)."""
    if isinstance(change, Move) and feature == change.source:
        return "down"
    return change.direction


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, str):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number
