"""ramlico.toy.captions: every sampled caption is true of its scene; the truth matrix is exact."""

from __future__ import annotations

import numpy as np
import open_clip
import torch

from ramlico.data.scenes import SceneObject
from ramlico.toy.captions import (
    FACTS,
    caption_vocabulary,
    fact_vector,
    sample_caption,
    scene_facts,
    truth_matrix,
)
from ramlico.toy.data import make_batch, pretraining_scene
from ramlico.toy.vocabulary import toy_descriptors

RED_CIRCLE_TOP_LEFT = SceneObject("red", "circle", (16.0, 16.0), 10.0)
TWO_STARS = [SceneObject("blue", "star", (48.0, 16.0), 10.0),
             SceneObject("blue", "star", (48.0, 48.0), 10.0)]  # fmt: skip


def test_scene_facts_by_hand():
    facts = scene_facts([RED_CIRCLE_TOP_LEFT, *TWO_STARS], 64, n_lines=2)
    assert facts == {
        "objects 3", "has red circle", "has blue star", "count blue star 2",
        "colour red", "colour blue", "shape circle", "shape star", "clutter",
        "at left red circle", "at top red circle", "at top left red circle",
        "at right blue star", "at top blue star", "at top right blue star",
        "at bottom blue star", "at bottom right blue star",
    }  # fmt: skip
    assert facts <= set(FACTS)


def test_truth_matrix_is_the_subset_relation():
    scenes = [{"has red circle", "colour red"}, {"has blue star", "colour blue"}]
    captions = [{"colour red"}, {"has blue star"}, set()]  # the empty caption is always true
    s = torch.stack([fact_vector(f) for f in scenes])
    c = torch.stack([fact_vector(f) for f in captions])
    expected = torch.tensor([[True, False, True], [False, True, True]])
    assert torch.equal(truth_matrix(s, c[:2]), expected[:, :2])
    assert torch.equal((c @ (1 - s).t()).t() == 0, expected)


def test_sampled_captions_are_true_of_their_scene_and_use_known_tokens():
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    known = set(tokenizer(caption_vocabulary() + list(toy_descriptors())).flatten().tolist())
    for i in range(400):
        rng = np.random.default_rng([7, i])
        objects, n_lines = pretraining_scene(rng)
        text, facts = sample_caption(objects, 64, rng, n_lines)
        assert facts and facts <= scene_facts(objects, 64, n_lines), (text, objects)
        assert set(tokenizer([text]).flatten().tolist()) <= known, text


def test_batches_are_a_function_of_seed_and_index():
    from ramlico.data.transforms import build_eval_transform

    t = build_eval_transform(64)
    a, b = make_batch(3, [5, 6], t), make_batch(3, [6], t)
    assert torch.equal(a.images[1], b.images[0]) and a.texts[1] == b.texts[0]
    assert not torch.equal(make_batch(4, [6], t).images[0], b.images[0])
    assert truth_matrix(a.scene_facts, a.caption_facts).diagonal().all()
