"""GET /v1/risk-list: the early-warning list, by ARR at risk, with an opaque cursor."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from bisect import bisect_right
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query

from service.api.schemas import RiskListPage, RiskTier
from service.auth import Reader
from service.cache import CachedScore, rounded
from service.config import PAGE_SIZE_LIMIT
from service.context import Ctx
from service.problems import ProblemError, forbidden, problem_responses
from service.risk_index import RiskFilters

router = APIRouter(prefix="/v1", tags=["risk list"])
#: The page-size cap the document states (RENEWAL_MAX_PAGE_SIZE may only lower it).
DOCUMENTED_MAX_PAGE_SIZE = PAGE_SIZE_LIMIT
#: Cursors are unpadded URL-safe base64 (what :func:`encode_cursor` writes).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"


def _sort_key(entry: CachedScore) -> tuple[float, str]:
    return (-entry.arr_at_risk, entry.account_id)


def encode_cursor(entry: CachedScore, filters_digest: str) -> str:
    """An opaque token: the last item's sort key and the filters it belongs to."""
    raw = json.dumps([entry.arr_at_risk, entry.account_id, filters_digest], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, filters_digest: str) -> tuple[float, str]:
    """The sort key to continue after; 422 for a forged, broken or foreign cursor."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        arr_at_risk, account_id, digest = json.loads(base64.urlsafe_b64decode(padded))
        key = (-float(arr_at_risk), str(account_id))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _bad_cursor("cursor is not one this API issued") from None
    if digest != filters_digest:
        raise _bad_cursor("cursor belongs to other filters; start again without it")
    return key


def _bad_cursor(detail: str) -> ProblemError:
    return ProblemError(
        422,
        "validation-error",
        f"invalid query.cursor: {detail}",
        errors=[{"field": "query.cursor", "message": detail, "type": "value_error"}],
    )


def filters_digest(filters: RiskFilters) -> str:
    """The filters a cursor belongs to. Without the later filters it is the digest of the
    first five alone, as before they existed: cursors issued then stay valid."""
    named = [filters.csm_id, filters.segment, filters.max_probability, filters.min_drop,
             filters.not_activated]
    later = [filters.past_window_not_activated,
             list(filters.risk_tiers) if filters.risk_tiers else None, filters.inputs_stale]
    if any(v is not None for v in later):
        named += later
    # Each filter added later joins the digest only when given, so the cursors issued before
    # it keep paging (appending it to the list above changed every digest with those set).
    if filters.max_days_to_renewal is not None:
        named.append(["max_days_to_renewal", filters.max_days_to_renewal])
    return hashlib.sha256(json.dumps(named).encode()).hexdigest()[:16]


def _item(entry: CachedScore) -> dict[str, Any]:
    return {
        "account_id": entry.account_id,
        "name": entry.name,
        "csm_id": entry.csm_id,
        "segment": entry.segment,
        "arr": entry.arr,
        "probability": rounded(entry.probability),
        "risk_tier": entry.risk_tier,
        # Unknown ARR: unknown at risk (null), though it sorts with 0 (the cursor needs a number).
        "arr_at_risk": None if entry.arr is None else round(entry.arr_at_risk, 2),
        "change_30d": entry.change_30d,
        "activated": entry.activated,
        "past_window_not_activated": entry.past_window_not_activated,
        "as_of": entry.as_of,
        "renewal_date": entry.renewal_date,
        "days_to_renewal": entry.days_to_renewal,
        "top_risk_drivers": list(entry.top_risk_drivers),
    }


@router.get(
    "/risk-list",
    response_model=RiskListPage,
    responses=problem_responses(401, 403, 422),
    summary="Accounts at risk, largest ARR at risk first",
)
async def get_risk_list(
    principal: Reader,
    ctx: Ctx,
    csm_id: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Only this CSM's accounts.")
    ] = None,
    segment: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    max_probability: Annotated[
        float | None, Query(ge=0, le=1, description="Renewal probability at most this.")
    ] = None,
    min_drop: Annotated[
        float | None,
        Query(ge=0, le=100, description="Lost at least this many percentage points over 30 days."),
    ] = None,
    not_activated: Annotated[
        bool | None,
        Query(description="true: only accounts not activated; false: only activated ones."),
    ] = None,
    past_window_not_activated: Annotated[
        bool | None,
        Query(
            description="true: only accounts past their activation window and not activated "
            "(the item's past_window_not_activated; not those still inside it); false: only "
            "the others whose status is known."
        ),
    ] = None,
    risk_tier: Annotated[
        list[RiskTier] | None,
        Query(description="Only these risk tiers; repeat for several (risk_tier=high&"
              "risk_tier=medium)."),
    ] = None,
    max_days_to_renewal: Annotated[
        int | None,
        Query(ge=-36500, le=36500,
              description="Only accounts whose main term ends within this many days of as_of "
              "(days_to_renewal <= it; overdue renewals, below 0, included; unknown excluded): "
              "e.g. 90 for the renewals of the coming quarter."),
    ] = None,
    inputs_stale: Annotated[
        bool | None,
        Query(
            description="true: only accounts whose CSM's manual health inputs are stale or "
            "were never given (inputs.stale of GET renewal); false: only those with fresh ones."
        ),
    ] = None,
    limit: Annotated[
        int | None,
        Query(ge=1, le=DOCUMENTED_MAX_PAGE_SIZE, description="Page size (default 50)."),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=500,
            pattern=CURSOR_PATTERN,
            description="From next_cursor (opaque; a cursor this API did not issue is a 422).",
        ),
    ] = None,
) -> dict[str, Any]:
    """Filtered accounts sorted by ARR at risk = ARR × (1 − renewal probability). A CSM key
    lists only its own accounts (asking for another CSM's answers 403).

    Async on purpose: a page is ~1 ms of in-memory work (no I/O). In anyio's thread pool its
    Python contended with the event loop for the GIL (its p50 in 20-s load soaks 2.6-4.3 →
    1.6 ms, ``docs/reliability.md``)."""
    settings = ctx.service_settings
    page_size = limit or settings.default_page_size
    if page_size > settings.max_page_size:  # an operator may set a cap below the documented
        raise ProblemError(
            422,
            "validation-error",
            f"invalid query.limit: at most {settings.max_page_size}",
            errors=[
                {
                    "field": "query.limit",
                    "type": "less_than_equal",
                    "message": f"Input should be less than or equal to {settings.max_page_size}",
                }
            ],
        )
    if principal.role == "csm":
        if csm_id is not None and csm_id != principal.csm_id:
            raise forbidden("a CSM key lists only its own accounts")
        csm_id = principal.csm_id
    tiers = tuple(sorted(set(risk_tier))) if risk_tier else None  # the same set, any order
    filters = RiskFilters(csm_id, segment, max_probability, min_drop, not_activated,
                          past_window_not_activated, tiers, inputs_stale, max_days_to_renewal)
    digest = filters_digest(filters)
    index = ctx.risk_index.of(ctx.cache.risk_order)
    order = index.order
    start = 0
    if cursor is not None:
        start = bisect_right(order, decode_cursor(cursor, digest), key=_sort_key)
    if filters.any:
        mask = index.mask(filters)
        total = int(np.count_nonzero(mask))
        positions = (np.flatnonzero(mask[start:])[: page_size + 1] + start).tolist()
    else:
        total = len(order)
        positions = list(range(start, min(start + page_size + 1, len(order))))
    page = [order[i] for i in positions]
    more = len(page) > page_size
    page = page[:page_size]
    return {
        "data": [_item(e) for e in page],
        "count": total,
        "total": total,
        "limit": page_size,
        "next_cursor": encode_cursor(page[-1], digest) if more and page else None,
    }
