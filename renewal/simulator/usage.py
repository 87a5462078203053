"""Per-user daily logins and key actions, drawn per account from the account's own stream.

Each account gets its own ``SeedSequence`` child (spawn key = stream, account index), so the
draws of an account do not depend on how accounts are grouped into chunks for writing.
Inside an account everything is vectorised over a (days x users) matrix: no Python loop per
user-day. Both usage grains are cut from the same draw: the account grain is the user grain
summed per account-site-day, exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from renewal.simulator.calendar import Calendar
from renewal.simulator.latent import sigmoid
from renewal.simulator.outcomes import Contracts
from renewal.simulator.params import SimulatorParams
from renewal.simulator.population import NEVER, Population

Grain = Literal["account", "user"]
MAX_SITES = 12
SITE_IDS = pa.array([f"S{k + 1}" for k in range(MAX_SITES)])

ACCOUNT_GRAIN_SCHEMA = pa.schema([
    ("account_id", pa.string()), ("date", pa.date32()), ("logins", pa.int64()),
    ("key_actions", pa.int64()), ("site_id", pa.string()), ("active_users", pa.int64()),
])
USER_GRAIN_SCHEMA = pa.schema([
    ("account_id", pa.string()), ("date", pa.date32()), ("logins", pa.int64()),
    ("key_actions", pa.int64()), ("user_id", pa.string()), ("site_id", pa.string()),
])


def usage_schema(grain: Grain) -> pa.Schema:
    return USER_GRAIN_SCHEMA if grain == "user" else ACCOUNT_GRAIN_SCHEMA


@dataclass(frozen=True)
class AccountDraw:
    """The usage rows of one account (in date, then site or user order) and its monthly volume."""

    day: np.ndarray
    site: np.ndarray
    user: np.ndarray | None  # user grain only
    logins: np.ndarray
    key_actions: np.ndarray
    active_users: np.ndarray | None  # account grain only
    month: np.ndarray  # calendar month indices the account was live in
    month_key_actions: np.ndarray
    month_last_day: np.ndarray  # day the month's value is reported
    value_per_action: float
    value_noise: np.ndarray


@dataclass(frozen=True)
class UsageInputs:
    """Everything the per-account draw needs, precomputed for all accounts."""

    population: Population
    contracts: Contracts
    health: np.ndarray
    calendar: Calendar
    params: SimulatorParams

    @property
    def last_day(self) -> np.ndarray:
        """Last day of use inside the window (may be before signing only if signed late)."""
        return np.minimum(self.contracts.live_end_day, self.calendar.end_day)


def account_rng(seed: int, stream: int, account: int) -> np.random.Generator:
    """The generator of one account in one stream: ``SeedSequence(seed).spawn`` by key."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, account)))


def draw_account(rng: np.random.Generator, a: int, inputs: UsageInputs, grain: Grain,
                 month_mid: np.ndarray) -> AccountDraw:
    """Logins and key actions of every seat of account ``a`` on every day it is live."""
    pop, p, cal = inputs.population, inputs.params, inputs.calendar
    seats, n_sites = int(pop.seats[a]), int(pop.n_sites[a])
    first, last = int(pop.signed_day[a]), int(inputs.last_day[a])
    days = np.arange(first, last + 1)
    activation = int(pop.activation_day[a])

    # Seats: sites (site 1 is the pilot), dormant seats, heavy-tailed action intensity.
    site_share = rng.dirichlet(np.full(n_sites, 2.0))
    site_size = 1 + rng.multinomial(seats - n_sites, site_share)
    site_of_user = np.repeat(np.arange(n_sites), site_size)
    dormant = rng.random(seats) < p.dormant_seat_share
    login_base = np.where(dormant, 0.03, rng.beta(*p.login_beta, seats))
    intensity = np.exp(rng.normal(np.log(p.actions_median), p.actions_log_sd, seats))
    # The pilot team: key staff of site 1, who log in most days and carry the first actions.
    core = min(int(site_size[0]), 2 + (seats >= 20))
    login_base[:core] = np.maximum(login_base[:core], 0.85)
    intensity[:core] = np.maximum(intensity[:core], p.actions_median)
    if activation >= NEVER:
        site_live = np.full(n_sites, np.inf)
    else:
        rollout = rng.exponential(p.site_rollout_days, n_sites - 1)
        site_live = activation + np.concatenate([[0.0], np.cumsum(rollout)])
    user_live = site_live[site_of_user] + rng.exponential(p.adoption_delay_days, seats)
    user_live[:core] = first
    value_per_action = float(np.exp(rng.normal(np.log(p.value_per_action_median), 0.5)))

    # Days: latent engagement, churn wind-down, calendar, busy days, activation phase.
    engaged = sigmoid(np.interp(days, month_mid, inputs.health[a]))
    wind_start, wind_end = int(inputs.contracts.wind_down_start[a]), int(
        inputs.contracts.live_end_day[a])
    if wind_start < NEVER:
        progress = np.clip((days - wind_start) / max(wind_end - wind_start, 1), 0.0, 1.0)
        engaged = engaged * (1.0 - (1.0 - p.wind_down_floor) * progress)
    activated = days >= activation
    login_day = engaged**0.7 * cal.day_factor[pop.region[a], days] * np.where(
        activated, 1.0, p.pre_activation_login)
    busy = rng.gamma(p.busy_day_shape, 1.0 / p.busy_day_shape, days.size)
    actions_day = engaged**1.2 * busy

    p_login = login_day[:, None] * login_base[None, :]
    p_login[days[:, None] < user_live[None, :]] = 0.0
    logged = rng.random(p_login.shape, dtype=np.float32) < p_login
    di, ui = np.nonzero(logged)  # row-major: by day, then user (users are sorted by site)
    rate = np.where(activated[di], actions_day[di] * intensity[ui], p.pre_activation_actions)
    key_actions = rng.poisson(rate)
    logins = 1 + rng.poisson(0.5, di.size)

    month = cal.calendar_month[days]
    month_key_actions = np.bincount(month[di] - month[0], weights=key_actions,
                                    minlength=month[-1] - month[0] + 1)
    months = np.arange(month[0], month[-1] + 1)
    value_noise = np.exp(rng.normal(0.0, 0.25, months.size))
    month_last_day = np.minimum(cal.calendar_month_last_day[months], last)

    if grain == "user":
        return AccountDraw(days[di], site_of_user[ui], ui, logins, key_actions, None, months,
                           month_key_actions, month_last_day, value_per_action, value_noise)
    cell = di * n_sites + site_of_user[ui]
    size = days.size * n_sites
    active_users = np.bincount(cell, minlength=size)
    used = np.flatnonzero(active_users)
    sum_logins = np.bincount(cell, weights=logins, minlength=size)[used].astype(np.int64)
    sum_actions = np.bincount(cell, weights=key_actions, minlength=size)[used].astype(np.int64)
    return AccountDraw(days[used // n_sites], used % n_sites, None, sum_logins, sum_actions,
                       active_users[used], months, month_key_actions, month_last_day,
                       value_per_action, value_noise)


@dataclass(frozen=True)
class UsageChunk:
    """The usage rows of a chunk of accounts as an Arrow table, and their monthly value rows."""

    table: pa.Table
    accounts_done: int  # accounts drawn so far, this chunk included
    value_account: np.ndarray
    value_day: np.ndarray
    value_amount: np.ndarray


def _chunk_table(draws: list[AccountDraw], accounts: np.ndarray, inputs: UsageInputs,
                 grain: Grain) -> pa.Table:
    rows = np.array([d.day.size for d in draws])
    local = np.repeat(np.arange(accounts.size), rows)
    ids = pa.array(inputs.population.account_id[accounts].tolist(), pa.string())
    day = np.concatenate([d.day for d in draws])
    columns: dict[str, pa.Array] = {
        "account_id": ids.take(pa.array(local)),
        "date": pa.array(inputs.calendar.dates(day), pa.date32()),
        "logins": pa.array(np.concatenate([d.logins for d in draws]).astype(np.int64)),
        "key_actions": pa.array(np.concatenate([d.key_actions for d in draws]).astype(np.int64)),
    }
    site = pa.array(np.concatenate([d.site for d in draws]).astype(np.int32))
    if grain == "user":
        seats = inputs.population.seats[accounts]
        names = [f"{aid}-U{k + 1:03d}" for aid, s in
                 zip(inputs.population.account_id[accounts], seats, strict=True) for k in range(s)]
        offsets = np.concatenate([[0], np.cumsum(seats)[:-1]])
        user = np.concatenate([d.user + offsets[i] for i, d in enumerate(draws)])
        columns["user_id"] = pa.array(names, pa.string()).take(pa.array(user))
        columns["site_id"] = SITE_IDS.take(site)
    else:
        columns["site_id"] = SITE_IDS.take(site)
        columns["active_users"] = pa.array(
            np.concatenate([d.active_users for d in draws]).astype(np.int64))
    return pa.table(columns, schema=usage_schema(grain))


def usage_chunks(inputs: UsageInputs, seed: int, stream: int, grain: Grain,
                 chunk_accounts: int) -> Iterator[UsageChunk]:
    """Draw usage account by account, yielding one chunk of ``chunk_accounts`` at a time."""
    cal = inputs.calendar
    month_mid = (cal.month_start_day[:-1] + cal.month_start_day[1:]) / 2.0
    n = inputs.population.n
    for lo in range(0, n, chunk_accounts):
        accounts = np.arange(lo, min(lo + chunk_accounts, n))
        draws = [draw_account(account_rng(seed, stream, int(a)), int(a), inputs, grain, month_mid)
                 for a in accounts]
        value_rows = np.array([d.month.size for d in draws])
        amount = np.concatenate([d.month_key_actions * d.value_per_action * d.value_noise
                                 for d in draws])
        yield UsageChunk(
            table=_chunk_table(draws, accounts, inputs, grain),
            accounts_done=int(accounts[-1]) + 1,
            value_account=np.repeat(accounts, value_rows),
            value_day=np.concatenate([d.month_last_day for d in draws]),
            value_amount=np.round(amount, 2),
        )
