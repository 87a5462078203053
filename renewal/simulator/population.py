"""Who the customers are: accounts, their CSMs, sites, prices and activation.

Everything here is drawn once per account, vectorised over all accounts, from one random
stream. The account's hidden *base quality* (how well product and customer fit) is the anchor
of its latent health; channel, segment and the CSM's skill shift it, which is why those
observable attributes carry real (but partial) signal about renewal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from renewal.simulator.calendar import REGIONS, Calendar
from renewal.simulator.params import SimulatorParams

NEVER = np.iinfo(np.int64).max // 4  # a day offset that never comes
INDUSTRIES = ("retail", "manufacturing", "professional_services", "healthcare", "logistics",
              "software", "education", "hospitality")
INDUSTRY_SHARES = (0.2, 0.16, 0.15, 0.1, 0.1, 0.13, 0.08, 0.08)
REGION_SHARES = (0.4, 0.33, 0.17, 0.1)
_NAME_FIRST = ("North", "Blue", "Silver", "Iron", "Green", "Bright", "Cedar", "Summit", "Harbor",
               "Atlas", "Nova", "Pioneer", "Granite", "Maple", "Orbit", "Vertex", "Coral",
               "Falcon", "Prairie", "Lumen", "Redwood", "Sterling", "Quartz", "Willow")
_NAME_SECOND = ("field", "stone", "bridge", "wave", "point", "gate", "line", "works", "peak",
                "forge", "lake", "ridge", "light", "path", "port", "crest")
_NAME_TRADE = ("Logistics", "Foods", "Health", "Systems", "Retail", "Labs", "Partners",
               "Manufacturing", "Consulting", "Hotels", "Learning", "Supply", "Group", "Motors")
_NAME_FORM = ("Inc.", "Ltd", "GmbH", "LLC", "S.A.", "B.V.", "Co.", "Pty Ltd")


@dataclass(frozen=True)
class Population:
    """One entry per account (arrays of length ``n``) plus the CSM roster."""

    account_id: np.ndarray  # str
    name: np.ndarray
    signed_day: np.ndarray  # day offset of signing
    seats: np.ndarray
    segment: np.ndarray
    industry: np.ndarray
    region: np.ndarray  # index into REGIONS
    channel: np.ndarray
    csm: np.ndarray  # index into the CSM roster
    csm_skill: np.ndarray  # per CSM
    csm_diligence: np.ndarray  # per CSM: chance of a manual health update per account-month
    csm_optimism: np.ndarray  # per CSM: bias of their 1-5 score
    quality: np.ndarray  # latent base health (logit scale)
    n_sites: np.ndarray
    term_months: np.ndarray  # 12 or 1
    first_arr: np.ndarray
    activation_window: np.ndarray  # days
    activation_offset: np.ndarray  # days after signing; NEVER when it never happens

    @property
    def n(self) -> int:
        return self.account_id.size

    @property
    def activation_day(self) -> np.ndarray:
        """Absolute day offset of activation (NEVER if it never happens)."""
        return np.where(self.activation_offset >= NEVER, NEVER, self.signed_day
                        + self.activation_offset)

    @property
    def activated_in_window(self) -> np.ndarray:
        return self.activation_offset <= self.activation_window

    def csm_ids(self) -> np.ndarray:
        width = max(2, len(str(self.csm_skill.size)))
        return np.array([f"csm_{k + 1:0{width}d}" for k in range(self.csm_skill.size)])

    def accounts_frame(self, calendar: Calendar) -> pd.DataFrame:
        """The ``accounts`` table."""
        return pd.DataFrame({
            "account_id": self.account_id,
            "signed_at": date_column(calendar, self.signed_day),
            "seats": self.seats.astype(np.int64),
            "segment": self.segment,
            "csm_id": self.csm_ids()[self.csm],
            "industry": self.industry,
            "region": np.array(REGIONS)[self.region],
            "acquisition_channel": self.channel,
            "name": self.name,
        })


def date_column(calendar: Calendar, days: np.ndarray, null: np.ndarray | None = None) -> pd.Series:
    """Day offsets as a column of ``datetime.date``: Parquet ``date32``, ISO text in CSV."""
    values = calendar.dates(days).astype(object)
    if null is not None:
        values[null] = None
    return pd.Series(values, dtype=object)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def draw_population(rng: np.random.Generator, n: int, calendar: Calendar,
                    params: SimulatorParams) -> Population:
    """Draw ``n`` accounts. Signing is front-loaded (density falls over the period) so that
    a good share of first contracts ends, and is decided, inside the observed window."""
    p = params
    seats = np.exp(rng.normal(np.log(p.seats_median), p.seats_log_sd, n))
    seats = np.clip(np.round(seats), p.seats_min, p.seats_max).astype(np.int64)
    segment = np.where(seats <= p.smb_max_seats, "smb",
                       np.where(seats <= p.mid_market_max_seats, "mid_market", "enterprise"))
    signed_day = np.floor(calendar.n_days * rng.random(n) ** 1.4).astype(np.int64)
    weekday = (calendar.start.astype(np.int64) + signed_day + 3) % 7
    signed_day = signed_day + np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0))
    signed_day = np.minimum(signed_day, calendar.end_day)
    industry = rng.choice(np.array(INDUSTRIES), n, p=INDUSTRY_SHARES)
    region = rng.choice(len(REGIONS), n, p=REGION_SHARES)
    channel_names = np.array(list(p.channels))
    shares = np.array([s for s, _ in p.channels.values()])
    channel_index = rng.choice(channel_names.size, n, p=shares / shares.sum())
    channel_effect = np.array([e for _, e in p.channels.values()])[channel_index]

    n_csm = int(np.clip(round(n / p.accounts_per_csm), p.csm_min, p.csm_max))
    enterprise_desk = max(2, n_csm // 4)  # CSMs 0..desk-1 also carry the enterprise accounts
    csm = np.where(segment == "enterprise", rng.integers(0, enterprise_desk, n),
                   np.where(segment == "smb", rng.integers(enterprise_desk, n_csm, n),
                            rng.integers(0, n_csm, n)))
    csm_skill = rng.normal(0.0, p.csm_skill_sd, n_csm)
    csm_diligence = rng.beta(2.0, 3.0, n_csm)
    csm_optimism = rng.normal(0.0, 0.4, n_csm)

    segment_effect = np.vectorize(p.segment_quality.get, otypes=[float])(segment)
    quality = (p.quality_mean + channel_effect + segment_effect + csm_skill[csm]
               + rng.normal(0.0, p.quality_sd, n))
    max_sites = np.minimum(12, seats // 3)
    n_sites = np.clip(1 + rng.poisson(seats / 80.0), 1, max_sites)
    monthly = (segment == "smb") & (rng.random(n) < p.monthly_term_share_smb)
    price = np.vectorize(p.price_per_seat.get, otypes=[float])(segment)
    first_arr = np.round(seats * price * np.exp(rng.normal(0.0, 0.2, n)), 2)

    window = np.where(seats <= p.activation_seat_threshold, p.activation_window_small,
                      p.activation_window_large)
    p_activate = _sigmoid(p.activation_intercept
                          + p.activation_quality_slope * (quality - p.quality_mean))
    in_window = rng.random(n) < p_activate
    offset_in_window = 3 + np.floor(rng.beta(1.5, 2.5, n) * (window - 12)).astype(np.int64)
    late = rng.random(n) < p.late_activation_share
    offset_late = window + 15 + np.floor(rng.random(n) * (p.late_activation_max_days - 15))
    activation_offset = np.where(in_window, offset_in_window,
                                 np.where(late, offset_late.astype(np.int64), NEVER))

    width = max(6, len(str(n)))
    account_id = np.array([f"A{i + 1:0{width}d}" for i in range(n)])
    name = np.char.add(np.char.add(
        np.char.add(rng.choice(np.array(_NAME_FIRST), n), rng.choice(np.array(_NAME_SECOND), n)),
        np.char.add(" ", rng.choice(np.array(_NAME_TRADE), n))),
        np.char.add(" ", rng.choice(np.array(_NAME_FORM), n)))
    return Population(
        account_id=account_id, name=name.astype(object), signed_day=signed_day, seats=seats,
        segment=segment, industry=industry, region=region, channel=channel_names[channel_index],
        csm=csm, csm_skill=csm_skill, csm_diligence=csm_diligence, csm_optimism=csm_optimism,
        quality=quality, n_sites=n_sites, term_months=np.where(monthly, 1, 12),
        first_arr=first_arr, activation_window=window, activation_offset=activation_offset,
    )
