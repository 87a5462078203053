"""Every model feature, declared once: what it means, its unit and which direction is risky.

Training reads ``risk`` and ``certain`` for monotone constraints, the service reads the
templates to explain drivers in words, and ``docs/features.md`` is generated from this list.
The feature vectors contain exactly these columns (those whose source table is present).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

Risk = Literal["low", "high"]
Kind = Literal["numeric", "bool", "category"]


@dataclass(frozen=True)
class Feature:
    """One feature.

    ``risk="low"`` means a LOW value is risky (renewal probability rises with the value);
    ``certain`` says the direction holds for every account, so it is safe as a monotone
    constraint. ``description`` is a template with ``{value}``; bool features phrase the
    true case there and the false case in ``description_false``.
    """

    name: str
    description: str
    unit: str
    risk: Risk | None
    certain: bool
    table: str
    kind: Kind = "numeric"
    definition: str = ""
    description_false: str | None = None
    # The values the pipeline can produce from valid data (None: unbounded on that side);
    # the API refuses a what-if value outside them (see VALUE_RANGES).
    minimum: float | None = None
    maximum: float | None = None

    @property
    def value_range(self) -> str:
        """The range in words for the docs: "0 to 30", ">= 0", "any"."""
        low, high = self.minimum, self.maximum
        if low is None and high is None:
            return "any"
        if high is None:
            return f">= {low:g}"
        if low is None:
            return f"<= {high:g}"
        return f"{low:g} to {high:g}"

    @property
    def levers(self) -> tuple[str, ...]:
        """What a CSM can do about this feature: the levers that change it."""
        return levers_for(self.name)


def _f(name: str, description: str, unit: str, risk: Risk | None, certain: bool, table: str,
       definition: str, kind: Kind = "numeric", description_false: str | None = None) -> Feature:
    return Feature(name, description, unit, risk, certain, table, kind, definition,
                   description_false)


FEATURES: tuple[Feature, ...] = (
    # --- who the account is ---------------------------------------------------------------
    _f("seats", "{value:.0f} opened seats", "seats", None, False, "accounts",
       "Opened (purchased) seats from the accounts table."),
    _f("tenure_days", "customer for {value:.0f} days", "days", "low", False, "accounts",
       "Days from signed_at to as_of."),
    _f("segment", "segment {value}", "", None, False, "accounts",
       "Segment from the accounts table (where present).", "category"),
    _f("csm_id", "looked after by CSM {value}", "", None, False, "accounts",
       "Owning CSM (where present).", "category"),
    _f("industry", "industry {value}", "", None, False, "accounts",
       "Industry (where present).", "category"),
    _f("region", "region {value}", "", None, False, "accounts",
       "Region (where present).", "category"),
    _f("acquisition_channel", "acquired through {value}", "", None, False, "accounts",
       "Acquisition channel (where present): low-quality channels renew less.", "category"),
    # --- the contract ---------------------------------------------------------------------
    _f("arr", "{value:,.0f} ARR in force", "currency/year", None, False,
       "contracts", "Sum of the ARR of the terms in force on as_of (start_date <= as_of <= "
       "end_date; a term whose end_date is the next term's start_date ends the day before), "
       "add-ons included. None in force (between terms, lapsed): the ARR of the latest "
       "start_date on or before as_of (ties: later end_date, then larger contract_id)."),
    _f("days_to_renewal", "{value:.0f} days to the renewal date", "days", None, False,
       "contracts", "end_date of the main term minus as_of: the term in force with the "
       "largest ARR (ties: later end_date, then larger contract_id), not an add-on; none in "
       "force: the latest-started term (negative once lapsed)."),
    _f("renewals_so_far", "renewed {value:.0f} times so far", "renewals", "low", False,
       "contracts", "Terms started on or before as_of that opened a new period of the logo, "
       "minus one: those starting when the main term in force the day before ends by their "
       "start (or with nothing in force, e.g. after a lapse); terms of one start day count "
       "once. Add-ons starting while the main term runs on are not renewals."),
    _f("last_arr_change_pct", "ARR changed by {value:+.0%} since the current term began",
       "ratio", "low", False, "contracts", "(arr - arr the day before the main term "
       "started) / that arr, both read as arr is: an add-on bought this term is expansion, a "
       "smaller renewal a downgrade; null for a first term."),
    # --- activity (daily tiers) -----------------------------------------------------------
    _f("observed_days_30d", "{value:.0f} of the last 30 days observed", "days", None, False,
       "usage", "Days in (T-30, T] on or after the account's first day (30 unless young)."),
    _f("active_days_30d", "{value:.0f} active days in the last 30 days", "days", "low", True,
       "usage", "Days in (T-30, T] whose tier is at least active_min_tier."),
    _f("active_day_share_30d", "active on {value:.0%} of the observed last 30 days", "share",
       "low", True, "usage", "active_days_30d / observed_days_30d: fair to young accounts."),
    _f("tier_zero_days_30d", "{value:.0f} days without a key action in the last 30 days", "days",
       "high", False, "usage", "Days in (T-30, T] with tier zero."),
    _f("tier_low_days_30d", "{value:.0f} low-activity days in the last 30 days", "days", None,
       False, "usage", "Days in (T-30, T] with tier low."),
    _f("tier_mid_days_30d", "{value:.0f} mid-activity days in the last 30 days", "days", "low",
       False, "usage", "Days in (T-30, T] with tier mid."),
    _f("tier_high_days_30d", "{value:.0f} high-activity days in the last 30 days", "days", "low",
       True, "usage", "Days in (T-30, T] with tier high."),
    _f("weekly_active_weeks_12w", "active in {value:.0f} of the last 12 weeks", "weeks", "low",
       True, "usage", "Of the 12 ISO weeks (Mon-Sun) ending on or before T, those with >= "
       "weekly_active_days active days."),
    _f("observed_weeks_12w", "{value:.0f} of the last 12 weeks observed", "weeks", None, False,
       "usage", "Of those 12 weeks, the ones with at least one day on or after the first day."),
    _f("monthly_active_months_3m", "monthly active in {value:.0f} of the last 3 months",
       "months", "low", True, "usage", "Of the 3 calendar months ending on or before T, those "
       "with enough active days (see monthly_rule)."),
    _f("observed_months_3m", "{value:.0f} of the last 3 months observed", "months", None, False,
       "usage", "Of those 3 months, the ones with at least one observed day."),
    _f("activity_rate_3m", "activity rate {value:.0%} over the last 3 months", "share", "low",
       True, "usage", "monthly_active_months_3m / 3: the input of the 0.9 x heuristic."),
    _f("logins_30d", "{value:.0f} logins in the last 30 days", "logins", "low", False, "usage",
       "Sum of logins in (T-30, T]."),
    _f("key_actions_30d", "{value:.0f} key actions in the last 30 days", "actions", "low", False,
       "usage", "Sum of key actions in (T-30, T]."),
    _f("key_actions_per_seat_30d", "{value:.1f} key actions per seat in the last 30 days",
       "actions/seat", "low", False, "usage", "key_actions_30d / seats: business volume against "
       "the seats the account bought, comparable across account sizes."),
    _f("logins_per_seat_30d", "{value:.1f} logins per seat in the last 30 days", "logins/seat",
       "low", False, "usage", "logins_30d / seats."),
    # --- activity over the last 90 days (the domain's "3 months before expiry") ------------
    _f("observed_days_90d", "{value:.0f} of the last 90 days observed", "days", None, False,
       "usage", "Days in (T-90, T] on or after the account's first day (90 unless young)."),
    _f("active_days_90d", "{value:.0f} active days in the last 90 days", "days", "low", True,
       "usage", "Days in (T-90, T] whose tier is at least active_min_tier."),
    _f("active_day_share_90d", "active on {value:.0%} of the observed last 90 days", "share",
       "low", True, "usage", "active_days_90d / observed_days_90d: fair to young accounts."),
    _f("key_actions_per_seat_90d", "{value:.1f} key actions per seat in the last 90 days",
       "actions/seat", "low", False, "usage", "Sum of key actions in (T-90, T] / seats."),
    _f("logins_per_seat_90d", "{value:.1f} logins per seat in the last 90 days", "logins/seat",
       "low", False, "usage", "Sum of logins in (T-90, T] / seats."),
    _f("logged_in_seat_days_90d", "{value:.0f} logged-in seat-days in the last 90 days",
       "seat-days", "low", False, "usage", "Sum over the days of (T-90, T] of the seats logged "
       "in that day (the daily table's active_users). Before activation this is the pilot "
       "team's attendance."),
    _f("logged_in_seat_day_share_90d", "seats logged in on {value:.0%} of seat-days in the "
       "last 90 days", "share", "low", True, "usage", "logged_in_seat_days_90d / (seats x "
       "observed_days_90d): breadth and regularity of use together."),
    _f("key_actions_per_logged_in_seat_day_90d", "{value:.1f} key actions per logged-in "
       "seat-day in the last 90 days", "actions/seat-day", "low", False, "usage",
       "Key actions in (T-90, T] / logged_in_seat_days_90d: how much work a logged-in user "
       "does; null without a login."),
    _f("logins_change_30d", "logins changed {value:+.0%} vs the 30 days before", "ratio", "low",
       False, "usage", "(logins in (T-30,T] - logins in (T-60,T-30]) / the latter; null if the "
       "latter is 0 or the account is younger than 60 days."),
    _f("key_actions_change_30d", "key actions changed {value:+.0%} vs the 30 days before",
       "ratio", "low", False, "usage", "As logins_change_30d, for key actions."),
    _f("active_users_change_30d", "logged-in users changed {value:+.0%} vs the 30 days before",
       "ratio", "low", False, "usage", "As logins_change_30d, for daily active users summed "
       "over the days (user-days)."),
    _f("peak_week_key_actions_change", "peak-week key actions changed {value:+.0%}", "ratio",
       "low", False, "usage", "Busiest 7-day block (blocks end at T) of the last 4 vs the "
       "busiest of the 4 before; null if the latter is 0 or fewer than 56 days observed."),
    _f("seat_utilization_30d", "{value:.0%} of seats used in the last 30 days", "share", "low",
       True, "usage", "User grain: distinct users with a login in (T-30, T] / seats. Account "
       "grain: the busiest day's active_users / seats (a lower bound)."),
    _f("active_sites_30d", "{value:.0f} sites active in the last 30 days", "sites", "low", False,
       "usage", "Distinct site_id with a key action in (T-30, T] (usage with site_id only)."),
    _f("active_site_share_30d", "{value:.0%} of sites active in the last 30 days", "share", "low",
       True, "usage", "active_sites_30d / distinct sites seen on or before T."),
    # --- activation -----------------------------------------------------------------------
    _f("activated", "activated within its window", "", "low", True, "usage",
       "days_to_activation <= activation_window_days, and the activation date <= T; null if "
       "signed before usage_history_starts.", "bool",
       "not activated within its window"),
    _f("days_to_activation", "activated {value:.0f} days after signing", "days", "high", False,
       "usage", "Activation date - signed_at, also when it is beyond the window (a late "
       "activation: activated is then false); null if not activated on or before T, or if "
       "signed before usage_history_starts. The "
       "activation date is the Nth active day (N = activation_week_active_days) of the first "
       "ISO week having N active days on or after signed_at."),
    _f("activation_window_days", "activation window of {value:.0f} days", "days", None, False,
       "accounts", "Segment override, else activation_window_days_small for seats <= "
       "activation_seat_threshold, else activation_window_days_large."),
    _f("past_window_not_activated", "past its activation window and not activated within it",
       "", "high", True, "usage", "T - signed_at >= activation_window_days and not activated "
       "(within the window: an account that activated later, days_to_activation > the window, "
       "counts too); null if signed before usage_history_starts.", "bool",
       "still inside its activation window, or activated within it"),
    # --- manual health --------------------------------------------------------------------
    _f("exec_sponsor_active", "the executive sponsor uses the product", "", "low", True,
       "health_inputs", "Latest non-null value on or before T.", "bool",
       "the executive sponsor does not use the product"),
    _f("core_process_live", "the core business process runs in the product", "", "low", True,
       "health_inputs", "Latest non-null value on or before T.", "bool",
       "the core business process does not run in the product"),
    _f("csm_score", "CSM health score {value:.0f} of 5", "score 1-5", "low", True,
       "health_inputs", "Latest non-null value on or before T."),
    _f("health_input_age_days", "last manual health input {value:.0f} days ago", "days", None,
       False, "health_inputs", "T minus the date of the latest health input on or before T."),
    _f("health_input_stale", "manual health input is stale", "", None, False, "health_inputs",
       "health_input_age_days > stale_input_days.", "bool", "manual health input is recent"),
    # --- tickets --------------------------------------------------------------------------
    _f("bugs_90d", "{value:.0f} bugs reported in the last 90 days", "tickets", "high", False,
       "tickets", "Bug tickets opened in (T-90, T]."),
    _f("feature_requests_90d", "{value:.0f} feature requests in the last 90 days", "tickets",
       None, False, "tickets", "Feature-request tickets opened in (T-90, T]."),
    _f("usage_questions_90d", "{value:.0f} usage questions in the last 90 days", "tickets", None,
       False, "tickets", "Usage-question tickets opened in (T-90, T]."),
    _f("open_high_bugs", "{value:.0f} open high-severity bugs", "tickets", "high", False,
       "tickets", "High bugs opened on or before T and not resolved on or before T."),
    _f("overdue_high_bugs", "{value:.0f} overdue high-severity bugs", "tickets", "high", True,
       "tickets", "Open high bugs with T - opened_at > the high deadline (default 7 days)."),
    _f("overdue_bugs", "{value:.0f} overdue bugs", "tickets", "high", False, "tickets",
       "Open bugs of any severity older than their severity's deadline."),
    _f("mean_resolution_days_180d", "tickets took {value:.1f} days to resolve on average",
       "days", "high", False, "tickets", "Mean resolved_at - opened_at of tickets resolved in "
       "(T-180, T]; null if none."),
    # --- surveys --------------------------------------------------------------------------
    _f("last_survey_score", "last survey score {value:.1f} of 10", "score 0-10", "low", True,
       "surveys", "Score of the latest survey on or before T."),
    _f("survey_score_change", "survey score changed by {value:+.1f}", "points", "low", False,
       "surveys", "Last score minus the one before; null with fewer than two surveys."),
    _f("days_since_last_survey", "last survey {value:.0f} days ago", "days", None, False,
       "surveys", "T minus the latest survey date on or before T."),
    # --- north-star value -----------------------------------------------------------------
    _f("cumulative_value", "{value:,.0f} of value created through the product", "amount",
       "low", True, "value", "Sum of value.amount dated on or before T (0 without rows), "
       "rounded to a millionth (the engines add in different orders)."),
    _f("north_star_reached", "past the north-star threshold", "", "low", True, "value",
       "cumulative_value >= north_star_threshold.", "bool", "not yet past the north-star "
       "threshold"),
)

#: What valid data can give, from the data contract's rules and each definition: counts are
#: never negative, a window of N days holds at most N days, a change of a count is at least
#: -100 %. Not bounded: days_to_renewal (negative once lapsed), mean_resolution_days_180d and
#: cumulative_value (the contract puts no rule on resolved_at or value.amount), the shares
#: of seats (usage may exceed the seats bought) and the changes upwards.
_DAYS_30 = ("observed_days_30d", "active_days_30d", "tier_zero_days_30d", "tier_low_days_30d",
            "tier_mid_days_30d", "tier_high_days_30d")
_NOT_NEGATIVE = (
    "tenure_days", "arr", "renewals_so_far", "logins_30d", "key_actions_30d",
    "key_actions_per_seat_30d", "logins_per_seat_30d", "key_actions_per_seat_90d",
    "logins_per_seat_90d", "logged_in_seat_days_90d", "logged_in_seat_day_share_90d",
    "key_actions_per_logged_in_seat_day_90d", "seat_utilization_30d", "active_sites_30d",
    "days_to_activation", "activation_window_days", "health_input_age_days", "bugs_90d",
    "feature_requests_90d", "usage_questions_90d", "open_high_bugs", "overdue_high_bugs",
    "overdue_bugs", "days_since_last_survey",
)
_CHANGES = ("last_arr_change_pct", "logins_change_30d", "key_actions_change_30d",
            "active_users_change_30d", "peak_week_key_actions_change")
VALUE_RANGES: dict[str, tuple[float | None, float | None]] = {
    "seats": (1, None),
    **{name: (0, 30) for name in _DAYS_30},
    "observed_days_90d": (0, 90), "active_days_90d": (0, 90),
    "weekly_active_weeks_12w": (0, 12), "observed_weeks_12w": (0, 12),
    "monthly_active_months_3m": (0, 3), "observed_months_3m": (0, 3),
    **{name: (0, 1) for name in ("active_day_share_30d", "active_day_share_90d",
                                 "activity_rate_3m", "active_site_share_30d")},
    **{name: (0, None) for name in _NOT_NEGATIVE},
    **{name: (-1, None) for name in _CHANGES},
    "csm_score": (1, 5), "last_survey_score": (0, 10), "survey_score_change": (-10, 10),
}
FEATURES = tuple(
    replace(f, minimum=VALUE_RANGES[f.name][0], maximum=VALUE_RANGES[f.name][1])
    if f.name in VALUE_RANGES else f
    for f in FEATURES
)

_BY_NAME = {f.name: f for f in FEATURES}


def get_feature(name: str) -> Feature:
    """The registry entry of ``name``; KeyError names the unknown feature."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown feature {name!r}") from None


def levers_for(feature_name: str) -> tuple[str, ...]:
    """Names of the levers (``features.levers``) that change ``feature_name``, in lever order.

    The levers are declared beside the registry, in terms of its features, and read it; the
    registry reaches them lazily so neither module imports the other at import time."""
    get_feature(feature_name)
    from features.levers import LEVERS

    return tuple(lever.name for lever in LEVERS if feature_name in lever.features)


def model_features(columns) -> list[str]:
    """Registry features present in ``columns`` (a frame or names), in registry order."""
    present = set(columns)
    return [f.name for f in FEATURES if f.name in present]


def describe(name: str, value: object) -> str:
    """The feature and its value in words, e.g. "only 3 active days in the last 30 days"."""
    feature = get_feature(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{name.replace('_', ' ')}: unknown"
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return f"{name.replace('_', ' ')}: unknown"
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    if feature.kind == "bool":
        if bool(value):
            return feature.description
        return feature.description_false or f"not: {feature.description}"
    try:
        return feature.description.format(value=value)
    except (ValueError, TypeError):
        return f"{name.replace('_', ' ')}: {value}"
