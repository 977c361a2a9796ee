"""The feature maps phi: values against their formulas, stacking, Lipschitz constants, bad
pairs."""

import pytest
import torch

from diffctrl.lqr import (
    product_kernel,
    sine_kernel,
    stack_kernels,
)


def test_kernels():
    x = torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float64)
    assert torch.allclose(sine_kernel(3, 4.0)(x), 4.0 * torch.sin(x))
    pk = product_kernel(3, [(0, 1), (2, 2)], scale=0.5)
    s = torch.sin(x[0])
    assert torch.allclose(pk(x)[0], 0.5 * torch.stack([s[0] * s[1], s[2] * s[2]]))
    both = stack_kernels(sine_kernel(3, 2.0), pk)
    assert both.d == 5 and torch.allclose(both(x)[0, 3:], pk(x)[0])
    assert sine_kernel(3, 4.0).lipschitz_phi == 4.0
    with pytest.raises(ValueError, match="pairs"):
        product_kernel(3, [(0, 3)])
