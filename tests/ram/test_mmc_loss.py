"""MMC loss: the worked example, zero positives, the closed-form gradient."""

from __future__ import annotations

import pytest
import torch

from ramlico.losses import mmc_loss

S = torch.tensor([[2.0, 0.0, 1.0], [0.5, 1.5, 0.0]], dtype=torch.float64)
Y = torch.tensor([[1, 0, 1], [0, 1, 0]])


def test_worked_example_batch_and_per_sample():
    # LSE over all 6 entries = log(e^2 + 1 + e + e^.5 + e^1.5 + 1) = log 18.2375; mean positive 1.5
    expected = torch.logsumexp(S.flatten(), 0).item() - 1.5
    assert expected == pytest.approx(1.403494, abs=1e-6)
    assert mmc_loss(S, Y).item() == pytest.approx(1.403494, abs=1e-6)
    assert mmc_loss(S, Y, per_sample=True).item() == pytest.approx(0.759860, abs=1e-6)


def test_gradient_is_softmax_minus_positive_share():
    s = S.clone().requires_grad_(True)
    mmc_loss(s, Y).backward()
    expected = torch.softmax(S.flatten(), 0).view(2, 3) - Y.double() / Y.sum()
    torch.testing.assert_close(s.grad, expected, rtol=0, atol=1e-12)


def test_zero_positives_give_zero_loss_and_zero_gradient():
    s = torch.randn(4, 5, requires_grad=True)
    loss = mmc_loss(s, torch.zeros(4, 5))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(s.grad, torch.zeros(4, 5))


def test_large_logits_stay_finite_and_bf16_is_computed_in_fp32():
    s = torch.tensor([[1000.0, -1000.0], [999.0, 0.0]])
    assert torch.isfinite(mmc_loss(s, torch.tensor([[1, 0], [0, 1]])))
    out = mmc_loss(S.to(torch.bfloat16), Y)
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(1.403494, abs=2e-2)


@pytest.mark.parametrize(
    ("logits", "targets", "match"),
    [
        (torch.zeros(2, 3), torch.zeros(3, 2), "same shape"),
        (torch.zeros(6), torch.zeros(6), "same shape"),
        (torch.tensor([[float("nan"), 0.0]]), torch.ones(1, 2), "NaN or Inf"),
    ],
)
def test_bad_input_is_named(logits, targets, match):
    with pytest.raises(ValueError, match=match):
        mmc_loss(logits, targets)
