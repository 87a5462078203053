"""The hidden state that drives everything observable: a monthly latent health per account.

Health is an AR(1) process on the logit scale that reverts to the account's base quality,
with occasional negative shocks (a champion leaves, a budget is cut) and rarer positive ones.
Usage, tickets, surveys, CSM judgement and the renewal outcome all read this path, so they
are correlated with each other only through it: the model must recover the state from noisy,
partial views of it.
"""

from __future__ import annotations

import numpy as np

from renewal.simulator.params import SimulatorParams


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def draw_health(rng: np.random.Generator, quality: np.ndarray, n_months: int,
                params: SimulatorParams) -> np.ndarray:
    """Monthly latent health, shape (accounts, n_months), started at its stationary spread."""
    p = params
    n = quality.size
    phi = p.health_persistence
    stationary_sd = p.health_innovation_sd / np.sqrt(1.0 - phi**2)
    health = np.empty((n, n_months))
    health[:, 0] = quality + rng.normal(0.0, stationary_sd, n)
    for m in range(1, n_months):
        shock = np.where(rng.random(n) < p.negative_shock_rate,
                         rng.normal(p.negative_shock_mean, 0.4, n), 0.0)
        shock += np.where(rng.random(n) < p.positive_shock_rate,
                          rng.normal(p.positive_shock_mean, 0.3, n), 0.0)
        health[:, m] = (quality + phi * (health[:, m - 1] - quality)
                        + rng.normal(0.0, p.health_innovation_sd, n) + shock)
    return health


def engagement(health: np.ndarray) -> np.ndarray:
    """How much of its potential an account uses, in (0, 1)."""
    return sigmoid(health)
