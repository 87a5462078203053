"""The simulator's knobs, in one frozen object, so that a study can vary one and keep the rest.

Every number here is a modelling choice, documented in ``docs/simulator.md``. Effects are on
the logit scale of the latent health unless stated otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SimulatorParams:
    """Defaults tuned so that renewal lands near 80 % and activation near 80 %."""

    # --- population -------------------------------------------------------------------------
    seats_median: float = 18.0
    seats_log_sd: float = 1.1
    seats_min: int = 3
    seats_max: int = 500
    smb_max_seats: int = 30  # segment smb: seats <= 30; mid_market <= 150; else enterprise
    mid_market_max_seats: int = 150
    monthly_term_share_smb: float = 0.05  # share of smb accounts on 1-month terms
    channels: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {  # name: (share, effect on base quality)
            "inbound": (0.35, 0.35),
            "partner": (0.20, 0.15),
            "event": (0.15, -0.10),
            "outbound": (0.30, -0.30),
        }
    )
    segment_quality: dict[str, float] = field(
        default_factory=lambda: {"smb": -0.15, "mid_market": 0.05, "enterprise": 0.25}
    )
    price_per_seat: dict[str, float] = field(
        default_factory=lambda: {"smb": 480.0, "mid_market": 600.0, "enterprise": 720.0}
    )
    accounts_per_csm: int = 80
    csm_min: int = 12
    csm_max: int = 40

    # --- latent health (monthly AR(1) on the logit scale, with shocks) -----------------------
    quality_mean: float = 1.0
    quality_sd: float = 0.65
    csm_skill_sd: float = 0.2
    health_persistence: float = 0.8
    health_innovation_sd: float = 0.35
    negative_shock_rate: float = 0.04  # per account-month: champion leaves, budget cut, ...
    negative_shock_mean: float = -1.6
    positive_shock_rate: float = 0.02  # new executive sponsor, new use case
    positive_shock_mean: float = 0.8

    # --- activation ---------------------------------------------------------------------------
    activation_intercept: float = 1.45
    activation_quality_slope: float = 1.0
    activation_window_small: int = 30  # seats <= activation_seat_threshold
    activation_window_large: int = 45
    activation_seat_threshold: int = 50
    late_activation_share: float = 0.3  # of accounts that miss the window
    late_activation_max_days: int = 150

    # --- renewal outcome -------------------------------------------------------------------------
    renewal_intercept: float = 2.8
    renewal_health_slope: float = 1.7
    renewal_late_activation: float = -1.0
    renewal_never_activated: float = -3.5
    renewal_tenure_bonus: float = 0.4  # second and later terms
    monthly_renewal_intercept: float = 3.6
    # The customer makes up its mind about three months before expiry (the domain's horizon);
    # a monthly term is decided as it starts. truth.parquet is then what was knowable at the
    # snapshot a model predicts from, and the wind-down after the decision is the late signal.
    decision_days_before_end_yearly: int = 90
    decision_days_before_end_monthly: int = 31
    wind_down_floor: float = 0.35  # engagement multiplier reached at end_date by churners

    # --- usage ------------------------------------------------------------------------------------
    dormant_seat_share: float = 0.15
    login_beta: tuple[float, float] = (5.0, 2.0)
    actions_median: float = 2.5  # key actions per logged-in day of a median user
    actions_log_sd: float = 1.2  # heavy tail: a few users carry most key actions
    adoption_delay_days: float = 20.0
    site_rollout_days: float = 60.0
    pre_activation_login: float = 0.5
    pre_activation_actions: float = 0.06
    weekend_factor: tuple[float, float] = (0.15, 0.08)  # Saturday, Sunday
    holiday_factor: float = 0.12
    year_end_factor: float = 0.55  # 24-31 December
    busy_day_shape: float = 3.0

    # --- signals ------------------------------------------------------------------------------
    tickets_per_month: float = 0.25  # times seats ** 0.45
    survey_rate: float = 0.15  # surveys sent per account-month
    survey_response: float = 0.55
    value_per_action_median: float = 40.0
