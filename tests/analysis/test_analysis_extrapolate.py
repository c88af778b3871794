"""The extrapolation check flags a curve that bends away from a power law, and flags a
true power law only about as often as a 95% interval should miss."""
import numpy as np

from analysis.extrapolate import extrapolation_check
from analysis.fit import FitSettings

X = np.repeat(2.0 ** np.arange(13, 21), 3)
SETTINGS = FitSettings(n_bootstrap=200)


def power_law(x):
    return 5.0 * x ** -0.33 + 0.70


def bent(x):
    """The same law up to 2^18, then a floor that rises: past 2^18 more data stops
    helping (e.g. the model is too small) -- NE at 2^20 is ~2% above the law."""
    return power_law(x) + 0.01 * np.maximum(0.0, np.log2(x) - 18.0)


def test_a_curve_that_bends_away_is_flagged():
    rng = np.random.default_rng(1)
    flags = []
    for i in range(10):
        y = bent(X) * np.exp(rng.normal(0, 0.003, X.size))
        check = extrapolation_check(X, y, SETTINGS, seed=i)
        flags.append(check["flagged"])
        assert check["error"] > 0  # the law predicts lower NE than measured
    assert sum(flags) >= 9


def test_a_true_power_law_is_rarely_flagged():
    """Expected false-flag rate ~5%: at most 3 of 20 (P(>3) ~ 1.6% at 5%)."""
    rng = np.random.default_rng(2)
    flags = 0
    for i in range(20):
        y = power_law(X) * np.exp(rng.normal(0, 0.003, X.size))
        check = extrapolation_check(X, y, SETTINGS, seed=i)
        flags += check["flagged"]
        lo, hi = check["interval95"]
        assert lo < check["predicted_ne"] < hi
    assert flags <= 3


def test_no_check_without_enough_x_values_to_hold_one_out():
    x = np.repeat([8.0, 16, 32, 64], 2)
    assert extrapolation_check(x, 0.02 * x ** -0.5 + 0.75, SETTINGS, seed=0) is None
