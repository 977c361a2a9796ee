"""The strided sub-chain: its levels, betas and cumulative products against the schedule it is
cut from, by hand."""

import numpy as np
import pytest
import torch

from diffctrl.diffusion.schedules import linear_schedule
from diffctrl.finetune.respacing import strided_schedule


def test_the_strided_schedule_keeps_the_cut_levels_alpha_bar():
    full = linear_schedule(100)
    ac = full.alpha_bar[
        1:
    ]  # alpha_bar_1..N, what a diffusers scheduler calls alphas_cumprod
    sub, ts = strided_schedule(ac, 5, offset=3)
    assert ts.tolist() == [3, 23, 43, 63, 83]  # offset + (k - 1) N / n
    assert sub.N == 5
    # the respaced chain's cumulative product is the full chain's at the kept levels
    want = np.concatenate([[1.0], ac.numpy()[[3, 23, 43, 63, 83]]])
    np.testing.assert_allclose(sub.alpha_bar.numpy(), want, rtol=1e-13)
    # beta_k = 1 - alpha_bar_k / alpha_bar_{k-1}
    np.testing.assert_allclose(
        sub.betas[1:].numpy(), 1 - want[1:] / want[:-1], rtol=1e-13
    )
    np.testing.assert_allclose(sub.times[1:].numpy(), (ts.numpy() + 1) / 100)


def test_bad_strides_raise():
    ac = linear_schedule(10).alpha_bar[1:]
    with pytest.raises(ValueError, match="n_steps"):
        strided_schedule(ac, 0)
    with pytest.raises(ValueError, match="offset"):
        strided_schedule(ac, 5, offset=2)  # the last level would be 10, past 9
    sub, ts = strided_schedule(torch.as_tensor(ac), 10, offset=0)
    np.testing.assert_allclose(sub.alpha_bar.numpy(), linear_schedule(10).alpha_bar)
