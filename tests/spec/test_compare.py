import math

import pytest
import torch

from bertcheck.spec.compare import differences
from bertcheck.spec.tolerances import EXACT, TOLERANCES, Tolerance, tolerances_for


def test_values_within_tolerance_give_no_mismatch_and_their_share_of_it():
    expected = torch.tensor([[[1.0, 2.0]]], dtype=torch.float64)
    mismatch, ratio = differences(expected + 5e-6, expected, Tolerance(rtol=0.0, atol=1e-5))
    assert mismatch is None
    assert ratio == pytest.approx(0.5, rel=1e-6)


def test_the_greatest_differences_are_located_in_batch_token_channel_coordinates():
    expected = torch.zeros(2, 3, 4)
    actual = expected.clone()
    actual[1, 2, 3] = 0.5
    real = torch.tensor([[True, True, False], [True, True, True]])
    mismatch, _ = differences(actual, expected, Tolerance(rtol=0.0, atol=1e-3), real)
    assert mismatch.max_abs_index == (1, 2, 3)
    assert (mismatch.mismatched, mismatch.total) == (1, 5 * 4)
    assert mismatch.lines() == [
        "Mismatched elements: 1 / 20 (5.0%)",
        "Greatest absolute difference: 0.5 at index (1, 2, 3) (up to 0.001 allowed)",
        "Greatest relative difference: inf at index (1, 2, 3) (up to 0 allowed)",
    ]


def test_padded_positions_are_never_compared():
    expected = torch.zeros(1, 2, 3)
    actual = expected.clone()
    actual[0, 1] = 100.0
    mismatch, ratio = differences(actual, expected, EXACT, torch.tensor([[True, False]]))
    assert mismatch is None and ratio == 0.0


def test_nan_is_an_infinite_difference_even_against_nan():
    expected = torch.tensor([[[float("nan"), 1.0]]])
    mismatch, ratio = differences(expected.clone(), expected, Tolerance(rtol=1.0, atol=1.0))
    assert mismatch.mismatched == 1 and math.isinf(mismatch.max_abs) and math.isinf(ratio)


def test_an_exact_tolerance_fails_on_one_ulp():
    expected = torch.tensor([[[1.0]]])
    mismatch, ratio = differences(torch.nextafter(expected, torch.tensor(2.0)), expected, EXACT)
    assert mismatch.mismatched == 1 and math.isinf(ratio)


def test_the_tolerance_table_has_both_numbers_for_every_dtype_and_refuses_others():
    for dtype, row in TOLERANCES.items():
        assert row.values.rtol > 0 and row.values.atol > 0, dtype
    # float64 must be tight enough to see an eps of 1e-5 where the config says 1e-12 (~1e-5 at v ~ 1).
    assert TOLERANCES[torch.float64].ln_var < 1e-8
    with pytest.raises(ValueError, match="no tolerances for torch.int64; bertcheck knows float32, float64"):
        tolerances_for(torch.int64)


def test_a_chained_float32_tolerance_grows_with_the_states_only_past_a_magnitude_of_10():
    from bertcheck.spec.tolerances import chained, tolerances_for

    states = torch.zeros(1, 4, 8)
    states[0, 0, 0] = 20.0  # an ALBERT-like outlier: rounding near 0 is a share of it, not of 0
    off = states.clone()
    off[0, 1, 3] += 1.5e-5
    assert differences(off, states, chained(torch.float32))[0] is None  # atol 2e-5 there
    mismatch, _ = differences(off, states, tolerances_for(torch.float32).values)
    assert mismatch is not None and "(up to 1e-05 allowed)" in mismatch.lines()[1]
    off[0, 1, 3] += 1e-5  # 2.5e-5: past 1e-6 of max|h| too, and the message says the atol that applied
    mismatch, _ = differences(off, states, chained(torch.float32))
    assert mismatch is not None and "(up to 2e-05 allowed)" in mismatch.lines()[1]
    small = states / 4  # |h| 5: exactly the table's tolerance
    assert chained(torch.float32).at(small) == tolerances_for(torch.float32).values
    assert chained(torch.float64).at(states) == tolerances_for(torch.float64).values  # float64: no scaling
