"""multi_positive_contrastive_loss: CLIP's loss for one positive each, exact for several."""

from __future__ import annotations

import math

import pytest
import torch
from open_clip.loss import ClipLoss

from ramlico.losses import multi_positive_contrastive_loss


def test_identity_positives_equal_open_clip_clip_loss():
    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=-1)
    ref = ClipLoss()(img, txt, logit_scale=torch.tensor(10.0))
    ours = multi_positive_contrastive_loss(10.0 * img @ txt.t(), torch.eye(6))
    torch.testing.assert_close(ours, ref)


def test_two_identical_pairs_by_hand():
    # logits all equal (2 x 2), every pair positive: both softmaxes are uniform, q uniform ->
    # loss = -log(1/2) on both sides
    loss = multi_positive_contrastive_loss(torch.zeros(2, 2), torch.ones(2, 2))
    assert loss.item() == pytest.approx(math.log(2))
    # a caption true of both images is no longer pushed away: with P = 1 the gradient w.r.t.
    # equal logits vanishes, with P = I it does not
    logits = torch.zeros(2, 2, requires_grad=True)
    multi_positive_contrastive_loss(logits, torch.ones(2, 2)).backward()
    assert logits.grad.abs().max() == 0
    with pytest.raises(ValueError, match="positive"):
        multi_positive_contrastive_loss(torch.zeros(2, 2), torch.tensor([[1.0, 0], [0, 0]]))
