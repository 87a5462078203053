"""Who the account is and where its contract stands at as_of: seats, tenure, ARR, history.

Only contracts that started on or before as_of are visible; ``renewed`` and ``next_arr`` are
outcomes known only later and are never read here.

Terms of one account may overlap (``docs/data-contract.md``): an add-on sold mid-term runs
beside the main term. So the features read the terms *in force* on a day (``start_date <=
day <= end_date``, the end being the term's last day), not the latest-started term: a small
add-on started after a large main term must neither replace the account's ARR nor look like a
renewal at a 99 % discount. The account's renewal decision is its **main term**: the one in
force with the largest ARR (ties: the later end, then the larger contract_id), as the money
at stake decides what the customer renews.

When no term is in force (between terms, lapsed), the account stands where its latest-started
term left it (ties: later end, larger contract_id), as before overlaps were read. An account
with one term at a time therefore gets the values of "the latest-started term" throughout.

A term whose ``end_date`` is another term's ``start_date`` (of the same account) is read as
ending the day before: the contract warns that such exports usually write an exclusive end,
and reading them literally would count both terms in force on the renewal day (a one-day
fake doubling of ARR). Which day that is depends only on a term starting on or before it,
so no term starting after as_of is read.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.windows import KEYS, Window, count_if, days_between, shift_days

CATEGORICAL_CONTEXT = ("segment", "csm_id", "industry", "region", "acquisition_channel")


def account_context(window: Window) -> ir.Table:
    """seats, tenure_days and the categorical context columns the accounts table has."""
    accounts, spine = window.source.tables["accounts"], window.spine
    present = [c for c in CATEGORICAL_CONTEXT if c in accounts.columns]
    rows = spine.join(accounts, "account_id")
    return rows.select(
        spine.account_id,
        spine.as_of,
        seats=accounts.seats,
        tenure_days=days_between(spine.as_of, accounts.signed_at),
        **{c: accounts[c] for c in present},
    )


def contract_features(window: Window) -> ir.Table:
    """arr in force, days to the main term's end, logo renewals and the ARR change since the
    main term started, from the terms started on or before as_of.

    - ``arr``: the sum over the terms in force, because the customer pays for all of them.
    - ``days_to_renewal``: to the main term's end, the logo's renewal decision (an add-on's
      end is not the date the account may leave).
    - ``renewals_so_far``: terms that opened a new period of the logo, minus the first (see
      :func:`_terms`): add-ons are sales inside a term, not renewals.
    - ``last_arr_change_pct``: the ARR now against the ARR the day before the main term
      started, so an add-on bought during this term counts as expansion and a smaller
      renewal as a downgrade; null for a first term (nothing to compare with).
    """
    contracts, spine = window.source.tables["contracts"], window.spine
    rows = _standing_rows(spine.select(*KEYS, day=spine.as_of), list(KEYS), _terms(contracts))
    out = rows.group_by(KEYS).aggregate(
        arr_in_force=rows.arr.sum(where=rows.in_force),
        main_arr=rows.arr.max(where=rows.is_main),
        main_end=rows.end_date.max(where=rows.is_main),
        arr_before_main=rows.arr_before.max(where=rows.is_main),
        logo_terms=count_if(rows, rows.opens_logo_term),
    )
    arr = out.arr_in_force.fill_null(out.main_arr)
    return out.select(
        out.account_id,
        out.as_of,
        arr=arr,
        days_to_renewal=days_between(out.main_end, out.as_of),
        renewals_so_far=(out.logo_terms - 1).cast("int64"),
        last_arr_change_pct=(arr - out.arr_before_main) / out.arr_before_main.nullif(0.0),
    )


def _terms(contracts: ir.Table) -> ir.Table:
    """Every term with what the day before its start says about it.

    - ``last_day``: the day it stops being in force (``end_date``, or the day before when
      another term of the account starts on ``end_date``: see the module docstring).
    - ``arr_before``: the account's ARR the day before the term started, read as ``arr`` is
      (in force then, or the latest-started term's); null when no term started earlier.
    - ``opens_logo_term``: the term opens a new period of the logo: the main term in force
      the day before it started ends by its start (a renewal: the next term starts the day
      after, or on the last day of an export with exclusive ends), or nothing was in force
      (the first term, or a return after a gap, counted as before). A term starting while
      the main term runs on past its start is an add-on; so is an early renewal that
      overlaps the old term by more than a day, as the contract reads such overlaps. Terms
      starting on the same day open one period (the one with the smallest contract_id
      carries the flag), so a renewal signed together with an expansion is one renewal.

    This matches the renewal metrics, where an add-on lapsing under a main term that runs
    on is not a lost logo (``features.metrics.renewals.runs_on``): neither is it a renewal.
    ``arr_before`` and ``opens_logo_term`` read only terms started before the term itself;
    ``last_day`` differs from ``end_date`` only on ``end_date``, a day on which the term
    starting then is visible too.
    """
    base = contracts.select("contract_id", "account_id", "start_date", "end_date", "arr")
    starts = base.select(
        next_account_id=base.account_id, next_start=base.start_date
    ).distinct()
    handed = base.left_join(
        starts,
        [base.account_id == starts.next_account_id, base.end_date == starts.next_start],
    )
    terms = handed.select(
        base.contract_id, base.account_id, base.start_date, base.end_date, base.arr,
        last_day=starts.next_start.isnull().ifelse(
            base.end_date, shift_days(base.end_date, -1)
        ),
    )
    eves = terms.select(
        term_id=terms.contract_id, account_id=terms.account_id,
        day=shift_days(terms.start_date, -1),
    )
    rows = _standing_rows(eves, ["term_id"], terms)
    before = rows.group_by("term_id").aggregate(
        arr_in_force=rows.arr.sum(where=rows.in_force),
        latest_arr=rows.arr.max(where=rows.is_main),
        main_end=rows.end_date.max(where=rows.is_main & rows.in_force),
    )
    out = terms.left_join(before, terms.contract_id == before.term_id).select(
        terms,
        arr_before=before.arr_in_force.fill_null(before.latest_arr),
        main_end_before=before.main_end,
    )
    first_of_its_day = ibis.row_number().over(
        group_by=[out.account_id, out.start_date], order_by=out.contract_id
    ) == 0
    opens = out.main_end_before.isnull() | (out.main_end_before <= out.start_date)
    return out.select(
        "contract_id", "account_id", "start_date", "end_date", "arr", "last_day",
        "arr_before", opens_logo_term=opens & first_of_its_day,
    )


def _standing_rows(points: ir.Table, keys: list[str], terms: ir.Table) -> ir.Table:
    """The terms visible on each point's ``day`` (started on or before it), with ``in_force``
    and ``is_main``: the main term in force, or the latest-started term when none is.

    ``points`` has ``keys``, ``account_id`` and ``day``; ``terms`` as :func:`_terms` builds
    them (any further columns are carried along). One ordering picks both: terms in force
    first by ARR, end and contract_id; without any in force, the latest start, then end,
    then contract_id, the order used before overlaps were read.
    """
    terms = terms.view()
    carried = [c for c in terms.columns if c not in keys]
    pairs = points.join(
        terms, [points.account_id == terms.account_id, terms.start_date <= points.day]
    ).select(
        *[points[k] for k in keys],
        *[terms[c] for c in carried],
        in_force=terms.last_day >= points.day,
    )
    ranked = pairs.mutate(
        rank_in_force=pairs.in_force.ifelse(1, 0),
        rank_arr=pairs.in_force.ifelse(pairs.arr, 0.0),
        rank_day=pairs.in_force.ifelse(pairs.end_date, pairs.start_date),
    )
    order = [ibis.desc(c) for c in
             ("rank_in_force", "rank_arr", "rank_day", "end_date", "contract_id")]
    ranked = ranked.mutate(
        is_main=ibis.row_number().over(group_by=keys, order_by=order) == 0
    )
    return ranked.drop("rank_in_force", "rank_arr", "rank_day")
