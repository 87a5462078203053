"""The serve-time scoring core: one LightGBM booster, one calibrator, and the words to explain.

The service, the batch scoring job, the MLflow pyfunc and the Spark UDF all score through this
module, so it stays light (numpy, pandas, lightgbm; no MLflow, no scikit-learn at runtime) and
self-contained: the feature registry's descriptions and risk directions are copied into the
scorer at training time, so a model artifact explains itself the same way wherever it is loaded.

Contributions in probability points: LightGBM's ``pred_contrib`` gives exact per-feature
log-odds contributions phi_i with ``sum(phi) + bias = margin``. The calibrated probability is
``g(margin)`` with g = calibrator ∘ sigmoid, a non-decreasing map. Each phi_i is scaled by the
secant slope ``(g(margin) - g(bias)) / (margin - bias)``, so the contributions add up exactly to
``p - base_probability`` and keep their signs; the slope of a monotone map is never negative and
never explodes. Where the calibrator is flat between bias and margin (an isotonic step), the
uncalibrated sigmoid's slope is used instead, so drivers stay visible.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from renewal.errors import RenewalError

FeatureKind = Literal["numeric", "bool", "category"]
PROBABILITY_FLOOR = 1e-3  # calibrated probabilities live in [0.001, 0.999]
# Below this many rows one thread is faster: OpenMP start-up and spin-waiting cost more than the
# work (measured: one-row explain 1.5 ms on 1 thread, 8.6 ms on "all cores" of a busy 2-core box).
PARALLEL_MIN_ROWS = 512


@dataclass(frozen=True)
class FeatureSpec:
    """One model input as the scorer needs it: position, encoding and how to say it in words."""

    name: str
    kind: FeatureKind = "numeric"
    description: str = ""
    description_false: str | None = None
    unit: str | None = None
    risk: Literal["low", "high"] | None = None
    certain: bool = False
    table: str | None = None
    optional_table: bool = False
    categories: tuple[str, ...] = ()

    @property
    def monotone(self) -> int:
        """+1 when renewal probability must rise with the value, -1 when it must fall, else 0."""
        if not self.certain or self.kind == "category":
            return 0
        return {"low": 1, "high": -1}.get(self.risk or "", 0)


@dataclass(frozen=True)
class Calibrator:
    """Raw log-odds → calibrated probability; isotonic (a step table) or sigmoid (Platt)."""

    method: Literal["isotonic", "sigmoid"]
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0

    def transform(self, margin: np.ndarray) -> np.ndarray:
        margin = np.asarray(margin, dtype=float)
        if self.method == "isotonic":
            p = np.interp(margin, np.asarray(self.x), np.asarray(self.y))
        else:
            p = 1.0 / (1.0 + np.exp(-(self.a * margin + self.b)))
        return np.clip(p, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)


@dataclass(slots=True)
class Explanation:
    """Why one account got its probability: what pulls it down, what holds it up."""

    probability: float
    base_probability: float
    risk_drivers: list[dict[str, Any]] = field(default_factory=list)
    protective_factors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"risk_drivers": self.risk_drivers, "protective_factors": self.protective_factors}


class RenewalScorer:
    """Features in, calibrated renewal probability (and its reasons) out."""

    def __init__(
        self,
        booster: lgb.Booster,
        features: Sequence[FeatureSpec],
        calibrator: Calibrator,
        heuristic_factor: float,
        metadata: dict[str, Any] | None = None,
        num_threads: int = 0,
    ):
        names = list(booster.feature_name())
        if names != [f.name for f in features]:
            raise RenewalError(
                f"booster features {names[:5]}... differ from the feature specs "
                f"{[f.name for f in features][:5]}..."
            )
        self.booster = booster
        self.features = tuple(features)
        self.calibrator = calibrator
        self.heuristic_factor = float(heuristic_factor)
        self.metadata = dict(metadata or {})
        self.num_threads = num_threads
        self._init_derived()

    def _init_derived(self) -> None:
        self.feature_names = [f.name for f in self.features]
        self._codes = category_codes(self.features)
        self._words_memo: dict[tuple[int, float | None], tuple[str, str, Any]] = {}
        # The expected raw margin over the training data is the bias column of pred_contrib.
        probe = np.full((1, len(self.features)), np.nan)
        self.base_margin = float(self.booster.predict(probe, pred_contrib=True)[0, -1])
        self.base_probability = float(self.calibrator.transform(np.array([self.base_margin]))[0])
        tables = sorted({f.table or "" for f in self.features if f.optional_table})
        self._table_members = {
            t: np.array([i for i, f in enumerate(self.features)
                         if f.optional_table and (f.table or "") == t]) for t in tables
        }

    # -- pickling: the booster travels as its text model (portable across LightGBM builds) --
    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        state["booster"] = self.booster.model_to_string()
        for derived in ("feature_names", "base_margin", "base_probability"):
            state.pop(derived, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["booster"] = lgb.Booster(model_str=state["booster"])
        self.__dict__.update(state)
        self._init_derived()

    # -- inputs --
    def prepare(self, frame: pd.DataFrame) -> np.ndarray:
        """A float matrix in the booster's feature order (see :func:`encode`)."""
        return encode(frame, self.features, self._codes)

    # -- outputs --
    def _threads(self, X: np.ndarray, num_threads: int | None = None) -> int:
        if num_threads is not None:
            return num_threads
        return self.num_threads if X.shape[0] >= PARALLEL_MIN_ROWS else 1

    def raw_margin(self, X: np.ndarray) -> np.ndarray:
        return self.booster.predict(X, raw_score=True, num_threads=self._threads(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated renewal probabilities, one per row of ``X`` (from :meth:`prepare`)."""
        return self.calibrator.transform(self.raw_margin(X))

    def heuristic(self, frame: pd.DataFrame) -> np.ndarray:
        """The fitted rule of thumb: factor × activity_rate_3m, clipped to [0, 1]."""
        if "activity_rate_3m" not in frame.columns:
            return np.full(len(frame), np.nan)
        rate = pd.to_numeric(frame["activity_rate_3m"], errors="coerce").astype("float64")
        return np.clip(self.heuristic_factor * rate.to_numpy(na_value=np.nan), 0.0, 1.0)

    def contributions(
        self, X: np.ndarray, num_threads: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature contributions in probability points (rows sum to p - base) and p.

        ``num_threads``: LightGBM's threads for this call (default: the scorer's, one below
        :data:`PARALLEL_MIN_ROWS` rows)."""
        raw = self.booster.predict(
            X, pred_contrib=True, num_threads=self._threads(X, num_threads)
        )
        phi, bias = raw[:, :-1], raw[:, -1]
        # The margin as the contributions' sum: equal to predict()'s raw score up to the last
        # floating-point digits (~1e-15), and a second pass over the trees saved (0.6 ms of a
        # 100-account POST /v1/score, whose trees the request's other work pushes out of cache).
        margin = raw.sum(axis=1)
        p = self.calibrator.transform(margin)
        base = self.calibrator.transform(bias)
        delta = margin - bias
        moved = np.abs(delta) > 1e-12
        safe_delta = np.where(moved, delta, 1.0)
        slope = np.where(moved, (p - base) / safe_delta, 0.0)
        flat = moved & (np.abs(p - base) < 1e-9)
        if flat.any():
            raw_p = 1.0 / (1.0 + np.exp(-margin))
            raw_base = 1.0 / (1.0 + np.exp(-bias))
            slope = np.where(flat, (raw_p - raw_base) / safe_delta, slope)
        return phi * slope[:, None], p

    def hidden_mask(self, X: np.ndarray) -> np.ndarray:
        """Features never to mention: missing values from an optional table absent for the row."""
        hidden = np.zeros(X.shape, dtype=bool)
        missing = np.isnan(X)
        for members in self._table_members.values():
            table_absent = missing[:, members].all(axis=1)
            hidden[np.ix_(table_absent, members)] = True
        return hidden

    def explain(
        self,
        X: np.ndarray,
        top_k: int = 3,
        hidden: np.ndarray | None = None,
        num_threads: int | None = None,
    ) -> list[Explanation]:
        """Top ``top_k`` risk drivers (pushing the probability down) and protective factors.

        ``hidden`` (same shape as X) adds features to keep out, e.g. columns the caller did not
        have; missing optional tables are always kept out. ``num_threads``: as in
        :meth:`contributions`.
        """
        contrib, p = self.contributions(X, num_threads)
        mask = self.hidden_mask(X)
        if hidden is not None:
            mask |= hidden
        contrib = np.where(mask, 0.0, contrib)
        k = min(top_k, contrib.shape[1])
        down = first_k(contrib, k, largest=False)
        up = first_k(contrib, k, largest=True)
        words = _Words(self)
        # A batch of 200,000 accounts makes 1.2 M driver dicts: the cyclic garbage collector
        # would walk them again and again while they are built (none of them forms a cycle).
        with collector_paused():
            drivers = words.rows(X, contrib, down, risk=True)
            factors = words.rows(X, contrib, up, risk=False)
            base = self.base_probability
            return [
                Explanation(probability, base, d, f)
                for probability, d, f in zip(p.tolist(), drivers, factors, strict=True)
            ]

    def _item(self, j: int, encoded: float, contribution: float) -> dict[str, Any]:
        """One driver (``contribution`` not 0) as :meth:`explain` words it, by the same code."""
        X = np.full((1, len(self.features)), np.nan)
        X[0, j] = encoded
        contrib = np.zeros_like(X)
        contrib[0, j] = contribution
        [items] = _Words(self).rows(X, contrib, np.array([[j]]), risk=contribution < 0)
        return items[0]

    @staticmethod
    def decode(spec: FeatureSpec, encoded: float) -> Any:
        """The human value of one encoded cell: category label, bool, number or None."""
        if math.isnan(encoded):
            return None
        if spec.kind == "category":
            return spec.categories[int(encoded)]
        if spec.kind == "bool":
            return bool(encoded)
        return float(encoded)


def first_k(values: np.ndarray, k: int, largest: bool) -> np.ndarray:
    """Per row, the positions of the ``k`` smallest (or largest) finite values, ties by
    position: what a stable ``argsort`` (of ``-values`` for the largest) puts first.

    For a few drivers, ``k`` passes of argmin/argmax (each the first extreme) cost a fraction
    of sorting every row: 0.03 against 0.2 ms for 100 accounts (``POST /v1/score``).
    """
    if k > 4:
        return np.argsort(-values if largest else values, axis=1, kind="stable")[:, :k]
    work = values.copy()
    rows = np.arange(values.shape[0])
    chosen = np.empty((values.shape[0], k), dtype=np.intp)
    pick, used = (np.argmax, -np.inf) if largest else (np.argmin, np.inf)
    for i in range(k):
        chosen[:, i] = position = pick(work, axis=1)
        work[rows, position] = used
    return chosen


#: Words kept per scorer; past this many (feature, value) pairs the memo starts over.
WORDS_MEMO_SIZE = 100_000


class _Words:
    """Drivers as the API shows them, each (feature, encoded value) put into words once for
    the scorer's lifetime (values repeat: flags, small counts, categories, and the same
    accounts are scored again and again), in a bounded memo shared by its threads."""

    def __init__(self, scorer: RenewalScorer) -> None:
        self._features = scorer.features
        self._decode = scorer.decode
        self._memo = scorer._words_memo
        if len(self._memo) > WORDS_MEMO_SIZE:
            self._memo.clear()

    def _known(self, j: int, encoded: float | None) -> tuple[str, str, Any]:
        spec = self._features[j]
        value = self._decode(spec, math.nan if encoded is None else encoded)
        known = self._memo[(j, encoded)] = (spec.name, describe_value(spec, value), value)
        return known

    def rows(
        self, X: np.ndarray, contrib: np.ndarray, chosen: np.ndarray, risk: bool
    ) -> list[list[dict[str, Any]]]:
        """Per row, the chosen cells that push the probability down (``risk``) or up.

        The selection, rounding and value extraction run on arrays; Python touches only the
        kept cells, each once (the per-row work of a batch of 200,000 accounts, issue 5).
        """
        c = np.take_along_axis(contrib, chosen, axis=1)
        keep = c < 0 if risk else c > 0
        # + 0.0 turns a negative zero into a zero (not "-0" in words); NaN stays NaN.
        values = np.take_along_axis(X, chosen, axis=1)[keep] + 0.0
        features = chosen[keep].tolist()
        rounded = np.round(c[keep], 6).tolist()
        memo, known = self._memo, self._known
        items = []
        append = items.append
        for j, encoded, contribution in zip(features, values.tolist(), rounded, strict=True):
            key = None if encoded != encoded else encoded
            name, description, value = memo.get((j, key)) or known(j, key)
            append({
                "feature": name,
                "description": description,
                "value": value,
                "contribution": contribution,
            })
        ends = np.cumsum(keep.sum(axis=1)).tolist()
        return [items[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while building many acyclic objects."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def category_codes(features: Sequence[FeatureSpec]) -> dict[str, dict[str, float]]:
    """Category label → code per categorical feature (codes are positions in ``categories``)."""
    return {f.name: {c: float(i) for i, c in enumerate(f.categories)}
            for f in features if f.kind == "category"}


def encode(
    frame: pd.DataFrame,
    features: Sequence[FeatureSpec],
    codes: dict[str, dict[str, float]] | None = None,
) -> np.ndarray:
    """A float matrix in ``features`` order; absent columns become NaN.

    Categories are encoded with the training codes (unknown → NaN, LightGBM's missing). Values
    that are present but not numbers are refused, never silently dropped.
    """
    codes = category_codes(features) if codes is None else codes
    X = np.full((len(frame), len(features)), np.nan, dtype=np.float64)
    for j, spec in enumerate(features):
        if spec.name not in frame.columns:
            continue
        column = frame[spec.name]
        if spec.kind == "category":
            mapping = codes[spec.name]
            labels = column.astype("object").where(column.notna(), None)
            X[:, j] = [mapping.get(str(v), np.nan) if v is not None else np.nan for v in labels]
            continue
        if pd.api.types.is_bool_dtype(column) or str(column.dtype) == "boolean":
            values = column.astype("Float64")
        else:
            values = pd.to_numeric(column, errors="coerce")
            bad = values.isna() & column.notna()
            if bad.any():
                examples = ", ".join(repr(v) for v in column[bad].head(3))
                raise RenewalError(
                    f"feature {spec.name}: {int(bad.sum())} value(s) are not numbers "
                    f"(e.g. {examples})"
                )
        X[:, j] = values.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
    return X


def describe_value(spec: FeatureSpec, value: Any) -> str:
    """The value in words, with the registry's template (same rules as ``features.registry``).

    Bool features phrase the true case in ``description`` and the false case in
    ``description_false``.
    """
    label = spec.name.replace("_", " ")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{label}: unknown"
    if spec.kind == "bool":
        if bool(value):
            return spec.description or label
        return spec.description_false or f"not: {spec.description or label}"
    if not spec.description:
        return f"{label}: {value}"
    try:
        return spec.description.format(value=value)
    except (ValueError, TypeError, KeyError, IndexError):
        return f"{label}: {value}"
