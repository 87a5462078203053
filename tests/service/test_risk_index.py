"""The risk list's column filters keep exactly the accounts the per-account rules keep."""

from __future__ import annotations

from datetime import date

import pytest

from service.cache import CachedScore
from service.risk_index import RiskFilters, RiskIndex, RiskIndexHolder


def entry(account_id: str, **values) -> CachedScore:
    fields = {
        "account_id": account_id, "csm_id": "csm-a", "segment": "smb", "arr": 1000.0,
        "activated": True, "past_window_not_activated": False, "probability": 0.5,
        "heuristic_probability": 0.5, "risk_tier": "medium", "as_of": date(2026, 6, 30),
        "model_name": "m", "model_version": "1", "change_30d": 0.0,
        "earlier_probability": 0.5, "score_id": 1, "top_risk_drivers": (), "body": b"{}",
    }
    return CachedScore(**(fields | values))


ORDER = [
    entry("at-max", probability=0.40),  # exactly max_probability: listed
    entry("above-max", probability=0.4000001),
    entry("drop-exactly-5", change_30d=-0.05),  # lost exactly 5 points: listed for min_drop=5
    entry("drop-4.99", change_30d=-0.0499),
    entry("change-unknown", change_30d=None),  # never listed for a min_drop
    entry("activation-unknown", activated=None),  # listed for neither not_activated value
    entry("not-activated", activated=False, csm_id="csm-b", segment="enterprise"),
    entry("no-owner", csm_id=None, segment=None),
]


def listed(filters: RiskFilters) -> list[str]:
    mask = RiskIndex(ORDER).mask(filters)
    return [e.account_id for e, keep in zip(ORDER, mask, strict=True) if keep]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (RiskFilters(), [e.account_id for e in ORDER]),
        (RiskFilters(max_probability=0.40), ["at-max"]),
        (RiskFilters(min_drop=5), ["drop-exactly-5"]),
        (RiskFilters(min_drop=0), ["at-max", "above-max", "drop-exactly-5", "drop-4.99",
                                   "activation-unknown", "not-activated", "no-owner"]),
        (RiskFilters(not_activated=True), ["not-activated"]),
        (RiskFilters(not_activated=False),
         [e.account_id for e in ORDER if e.activated is True]),
        (RiskFilters(csm_id="csm-b"), ["not-activated"]),
        (RiskFilters(segment="enterprise", not_activated=True), ["not-activated"]),
        (RiskFilters(segment="smb", min_drop=5, max_probability=0.5), ["drop-exactly-5"]),
    ],
)
def test_filters_follow_the_risk_list_rules_at_their_boundaries(filters, expected):
    assert listed(filters) == expected


def test_the_index_is_rebuilt_when_the_cache_replaces_its_order():
    holder = RiskIndexHolder()
    first = holder.of(ORDER)
    assert holder.of(ORDER) is first
    replaced = [*ORDER[1:], entry("new", probability=0.1)]
    second = holder.of(replaced)
    assert second is not first
    assert RiskFilters(max_probability=0.2).any
    assert [replaced[i].account_id for i in second.mask(RiskFilters(max_probability=0.2))
            .nonzero()[0]] == ["new"]
