"""The data contract's tables, declared once as data.

Read by the reader (dtype normalisation), the validator (rules) and the docs; the simulator
writes exactly these columns. See ``docs/data-contract.md`` for meanings and an example.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

Kind = Literal["str", "date", "int", "float", "bool"]

#: The days a date column may hold, first and last included. pandas holds dates as nanosecond
#: timestamps (1677-09-21 to 2262-04-11); the round years inside that span leave room for the
#: features' windows, and every real date of a renewal business. What lies outside is a
#: placeholder: 9999-12-31 for an open-ended contract, 0001-01-01 for an unknown date.
DATE_RANGE = (date(1678, 1, 1), date(2261, 12, 31))


@dataclass(frozen=True)
class Column:
    """One column: its kind, whether the table must have it, whether nulls are allowed."""

    name: str
    kind: Kind
    required: bool = True
    nullable: bool = False
    enum: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    #: Free text (names, comments, notes): shown to people, never compared or grouped, so it is
    #: kept as written; the other text columns are ids and codes, refused with spaces around.
    free_text: bool = False
    description: str = ""


@dataclass(frozen=True)
class Table:
    """One table of the data directory."""

    name: str
    required: bool
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    description: str = ""
    date_columns_checked_against_as_of: tuple[str, ...] = field(default_factory=tuple)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


ACCOUNTS = Table(
    "accounts",
    required=True,
    key=("account_id",),
    description="One row per paying account (the entity that renews).",
    date_columns_checked_against_as_of=("signed_at",),
    columns=(
        Column("account_id", "str", description="Unique account key."),
        Column("signed_at", "date", description="Date the first contract was signed."),
        Column("seats", "int", min=0, min_exclusive=True, description="Opened (purchased) seats."),
        Column("segment", "str", required=False, nullable=True,
               description="Customer segment, e.g. smb, mid_market, enterprise."),
        Column("csm_id", "str", required=False, nullable=True,
               description="The CSM who owns the account (decides who may see it)."),
        Column("industry", "str", required=False, nullable=True, description="Industry."),
        Column("region", "str", required=False, nullable=True, description="Sales region."),
        Column("acquisition_channel", "str", required=False, nullable=True,
               description="How the account was won (inbound, partner, ...)."),
        Column("name", "str", required=False, nullable=True, free_text=True,
               description="Display name (PII)."),
    ),
)

CONTRACTS = Table(
    "contracts",
    required=True,
    key=("contract_id",),
    description="One row per contract term; renewals chain into new contracts.",
    date_columns_checked_against_as_of=("start_date",),
    columns=(
        Column("contract_id", "str", description="Unique contract key."),
        Column("account_id", "str", description="The account (must exist in accounts)."),
        Column("start_date", "date", description="First day of the term."),
        Column("end_date", "date", description="Last day of the term, included (a renewal's "
               "next term starts the day after). Must be after start_date."),
        Column("arr", "float", min=0, description="Annual recurring revenue of the term."),
        Column("renewed", "bool", nullable=True, description="Null = not decided yet."),
        Column("next_arr", "float", required=False, nullable=True, min=0,
               description="ARR of the renewal term, for NDR."),
    ),
)

USAGE = Table(
    "usage",
    required=True,
    key=("account_id", "date", "user_id", "site_id"),
    description="Product usage per account-day, user-day or user-site-day.",
    date_columns_checked_against_as_of=("date",),
    columns=(
        Column("account_id", "str", description="The account (must exist in accounts)."),
        Column("date", "date", description="Calendar day of the usage."),
        Column("logins", "int", min=0, description="Logins that day."),
        Column("key_actions", "int", min=0, description="Key business actions that day."),
        Column("user_id", "str", required=False, description="User (seat), for per-user rows."),
        Column("site_id", "str", required=False,
               description="Site / store / branch of the account, for multi-site usage."),
        Column("active_users", "int", required=False, min=0,
               description="Logged-in seats that day; required when user_id is absent."),
    ),
)

TICKETS = Table(
    "tickets",
    required=False,
    key=("ticket_id",),
    description="Support tickets.",
    date_columns_checked_against_as_of=("opened_at",),
    columns=(
        Column("ticket_id", "str", description="Unique ticket key."),
        Column("account_id", "str", description="The account (must exist in accounts)."),
        Column("opened_at", "date", description="Day the ticket was opened."),
        Column("type", "str", enum=("bug", "feature_request", "usage_question"),
               description="Ticket class."),
        Column("severity", "str", nullable=True, enum=("low", "medium", "high"),
               description="Bug severity; null for other types."),
        Column("resolved_at", "date", nullable=True, description="Null while unresolved."),
    ),
)

SURVEYS = Table(
    "surveys",
    required=False,
    key=("account_id", "date"),
    description="Satisfaction survey answers.",
    date_columns_checked_against_as_of=("date",),
    columns=(
        Column("account_id", "str", description="The account (must exist in accounts)."),
        Column("date", "date", description="Day of the answer."),
        Column("score", "float", min=0, max=10, description="Satisfaction score 0-10."),
        Column("comment", "str", required=False, nullable=True, free_text=True,
               description="Free text."),
    ),
)

HEALTH_INPUTS = Table(
    "health_inputs",
    required=False,
    description="CSMs' manual judgement of an account.",
    date_columns_checked_against_as_of=("date",),
    columns=(
        Column("account_id", "str", description="The account (must exist in accounts)."),
        Column("date", "date", description="Day the CSM recorded the judgement."),
        Column("exec_sponsor_active", "bool", nullable=True,
               description="Does the customer's executive sponsor use the product regularly?"),
        Column("core_process_live", "bool", nullable=True,
               description="Do the customer's core business processes run in the product?"),
        Column("csm_score", "int", nullable=True, min=1, max=5,
               description="The CSM's overall judgement, 1 (churning) to 5 (safe)."),
        Column("note", "str", required=False, nullable=True, free_text=True,
               description="Free text (private)."),
    ),
)

VALUE = Table(
    "value",
    required=False,
    description="North-star business value created through the product.",
    date_columns_checked_against_as_of=("date",),
    columns=(
        Column("account_id", "str", description="The account (must exist in accounts)."),
        Column("date", "date", description="Day the value was created."),
        Column("amount", "float", description="Value created that day (e.g. revenue)."),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (ACCOUNTS, CONTRACTS, USAGE, TICKETS, SURVEYS, HEALTH_INPUTS, VALUE)
}
REQUIRED_TABLES = tuple(n for n, t in TABLES.items() if t.required)
OPTIONAL_TABLES = tuple(n for n, t in TABLES.items() if not t.required)
