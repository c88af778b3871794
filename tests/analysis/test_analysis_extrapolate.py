"""The rolling extrapolation check: fit on the smallest k x values,
predict every larger one, for each k.  It flags a curve that bends away from a power law,
flags a true power law rarely, and its errors grow with the extrapolation factor only
when the law is wrong."""
import numpy as np
import pytest

from analysis.extrapolate import rolling_extrapolation
from analysis.fit import FitSettings

X = np.repeat(2.0 ** np.arange(13, 21), 3)
SETTINGS = FitSettings(n_bootstrap=200)


def power_law(x):
    return 5.0 * x ** -0.33 + 0.70


def bent(x):
    """The same law up to 2^17, then a floor that rises: past 2^17 more data stops
    helping (e.g. the model is too small) -- NE at 2^20 is ~3% above the law."""
    return power_law(x) + 0.01 * np.maximum(0.0, np.log2(x) - 17.0)


def test_every_prefix_predicts_every_larger_x():
    check = rolling_extrapolation(X, power_law(X), SETTINGS, seed=0)
    # k = 4..7 fitted x values, each predicting the 8 - k larger ones: 4 + 3 + 2 + 1.
    assert check.n_predictions == 10
    ks = sorted({p.n_fit_x for p in check.predictions})
    assert ks == [4, 5, 6, 7]
    assert check.max_factor == pytest.approx(2.0 ** 4)  # fitted up to 2^16, predicted 2^20
    for p in check.predictions:
        assert p.factor == pytest.approx(p.x / p.fit_x_max)
        assert abs(p.relative_error) < 1e-6  # noiseless: the law is exact


def test_a_curve_that_bends_away_is_flagged():
    rng = np.random.default_rng(1)
    flags = []
    for i in range(10):
        y = bent(X) * np.exp(rng.normal(0, 0.003, X.size))
        check = rolling_extrapolation(X, y, SETTINGS, seed=i)
        flags.append(check.flagged)
        assert check.relative_error_at_max_factor > 0  # the law predicts lower NE than measured
    assert sum(flags) >= 9


def test_a_true_power_law_is_rarely_flagged():
    """Each prediction's 95% interval should miss about 5% of the time; the series is
    flagged only when at least 2 and a quarter of its 10 predictions miss."""
    rng = np.random.default_rng(2)
    flags, outside, total = 0, 0, 0
    for i in range(20):
        y = power_law(X) * np.exp(rng.normal(0, 0.003, X.size))
        check = rolling_extrapolation(X, y, SETTINGS, seed=i)
        flags += check.flagged
        outside += check.n_outside
        total += check.n_predictions
        for p in check.predictions:
            lo, hi = p.interval95
            assert lo < p.predicted_ne < hi
    assert flags <= 2
    assert outside / total <= 0.12


def test_no_check_without_enough_x_values_to_hold_one_out():
    x = np.repeat([8.0, 16, 32, 64], 2)
    assert rolling_extrapolation(x, 0.02 * x ** -0.5 + 0.75, SETTINGS, seed=0) is None
