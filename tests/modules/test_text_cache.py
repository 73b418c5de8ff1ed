"""TextFeatureCache: the one text-feature cache of every method."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ramlico.modules import TextFeatureCache
from ramlico.zeroshot import pad_descriptor_embeddings

CPU = torch.device("cpu")
NAMES = ["red circle", "blue star", "green cross"]


def test_classifier_equals_the_backbones_and_is_computed_once_per_key(tiny_clip, monkeypatch):
    calls = []
    original = type(tiny_clip).zero_shot_classifier

    def counting(self, names, templates):
        calls.append((tuple(names), tuple(templates)))
        return original(self, names, templates)

    monkeypatch.setattr(type(tiny_clip), "zero_shot_classifier", counting)
    cache = TextFeatureCache(tiny_clip)
    w = cache.classifier(NAMES, ("a photo of a {}.",), CPU)
    assert w.shape == (32, 3)
    torch.testing.assert_close(w, original(tiny_clip, NAMES, ("a photo of a {}.",)))
    assert cache.classifier(NAMES, ("a photo of a {}.",), CPU) is w  # reused
    cache.classifier(NAMES, ("art of a {}.",), CPU)  # other templates: another entry
    cache.classifier(NAMES[:2], ("a photo of a {}.",), CPU)  # other labels: another entry
    assert len(calls) == 3 and len(cache) == 3
    with pytest.raises(ValueError, match=r"needs one '\{\}'"):
        TextFeatureCache.check_templates(["a photo"])


def test_sentence_sets_are_the_padded_unit_embeddings(tiny_clip):
    cache = TextFeatureCache(tiny_clip)
    sentences = [["a red circle", "round"], ["a star"], ["a cross", "two bars", "plus"]]
    reads = []

    def read():
        reads.append(1)
        return sentences

    feats, mask = cache.sentence_sets("descriptors", NAMES, read, CPU)
    embs = [tiny_clip.encode_text(tiny_clip.tokenize(s), normalize=True) for s in sentences]
    ref, ref_mask = pad_descriptor_embeddings(embs)
    torch.testing.assert_close(feats, ref)
    assert torch.equal(mask, ref_mask) and mask.sum(1).tolist() == [2, 1, 3]
    assert cache.sentence_sets("descriptors", NAMES, read, CPU)[0] is feats and reads == [1]
    cache.sentence_sets("clip", NAMES, read, CPU)  # another kind, same classes: its own entry
    assert reads == [1, 1]


def test_clear_by_kind_and_bounded_size():
    cache = TextFeatureCache(max_entries=3)
    for i in range(3):
        cache.get(("prompted", i), lambda i=i: i)
    cache.get(("tokens", 0), lambda: "t")  # evicts the oldest ("prompted", 0)
    assert len(cache) == 3 and cache.get(("prompted", 0), lambda: "again") == "again"
    cache.clear("prompted")
    assert len(cache) == 1 and cache.get(("tokens", 0), lambda: "new") == "t"
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError, match="no backbone"):
        cache.classifier(NAMES, ("{}",), CPU)
    with pytest.raises(ValueError, match="max_entries"):
        TextFeatureCache(max_entries=0)


MODULE_INTERNALS = set(vars(nn.Module()))


def _tensor_store(name: str, value) -> bool:
    """A plain dict of tensors (or of tuples of tensors) outside nn.Module's own: a cache."""
    if name in MODULE_INTERNALS or not isinstance(value, dict):
        return False
    items = [x for v in value.values() for x in (v if isinstance(v, tuple) else (v,))]
    return any(isinstance(x, torch.Tensor) for x in items)


def test_every_method_keeps_its_text_in_one_cache(tiny_clip, images):
    """CLIP zero-shot, CLIP-Adapter, LaZSL, OTFusion and RAM hold one TextFeatureCache each and,
    after scoring, no other store of tensors."""
    from ramlico.methods import RAM, CLIPAdapter, CLIPZeroShot, LaZSL, OTFusion

    models = [
        CLIPZeroShot(tiny_clip),
        CLIPAdapter(tiny_clip, optimizer=torch.optim.SGD),
        LaZSL(tiny_clip, "generated_shapes", num_crops=2, explain_images=0),
        OTFusion(tiny_clip),
        RAM(tiny_clip, saa_layers=[0, 1], tss_layers=[1], visual_prompt_layers=[1],
            text_prompt_layers=[1]),
    ]  # fmt: skip
    for model in models:
        model.label_names, model.eval_splits = {"test": NAMES}, ["test"]
        model.eval()
        with torch.no_grad():
            model.predict_scores(images, "test")
        caches = [v for v in vars(model).values() if isinstance(v, TextFeatureCache)]
        stores = [k for k, v in vars(model).items() if _tensor_store(k, v)]
        assert len(caches) == 1 and len(caches[0]) >= 1 and not stores, type(model).__name__


def test_ram_drops_prompted_features_when_training_but_keeps_frozen_ones(tiny_clip):
    from ramlico.methods import RAM

    ram = RAM(tiny_clip, saa_layers=[0, 1], tss_layers=[1], visual_prompt_layers=[1],
              text_prompt_layers=[1], kcot={"teacher": False})  # fmt: skip
    ram.label_names = {"zsl": NAMES, "train": NAMES}
    ram.eval()
    ram.predict_scores(torch.randn(2, 3, 64, 64), "zsl")
    kinds = sorted({k[0] for k in ram.text._store})
    assert kinds == ["prompted", "tokens"]
    before = ram.text.get(("prompted", "cpu", tuple(NAMES)), lambda: None)
    with torch.no_grad():
        ram.text_prompts.prompts["1"].add_(1.0)  # a training step moved the prompts
    ram.text.clear("prompted")  # what training_step / the eval hooks do
    ram.predict_scores(torch.randn(2, 3, 64, 64), "zsl")  # recomputed from the new prompts
    now = ram.text.get(("prompted", "cpu", tuple(NAMES)), lambda: None)
    assert not torch.allclose(before, now)
    assert ("tokens", tuple(NAMES)) in ram.text._store  # token ids survive
