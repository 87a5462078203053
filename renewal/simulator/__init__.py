"""A realistic simulated data directory, driven by a hidden per-account health (see
``docs/simulator.md``)."""

from renewal.simulator.params import SimulatorParams
from renewal.simulator.run import SimulationSummary, simulate

__all__ = ["SimulationSummary", "SimulatorParams", "simulate"]
