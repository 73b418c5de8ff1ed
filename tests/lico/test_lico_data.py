"""Single-label training data (LICO): generated train/test splits, labelled subsets, errors."""

from __future__ import annotations

import pytest
import torch

from ramlico.data import GENERATED_CLASSES, ClassificationDataModule, balanced_subset
from ramlico.data.classification_transforms import build_classification_transform
from ramlico.data.sources.torchvision_sets import CIFAR10


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("gen_sup")


def make(root, **kw) -> ClassificationDataModule:
    gen = {"n_per_class": 3, "image_size": 32, "seed": 0, "n_test_per_class": 2}
    args = dict(source="generated", root=str(root), image_size=32, batch_size=8, generated=gen)
    args.update(kw)
    dm = ClassificationDataModule(**args)
    dm.setup("fit")
    return dm


def test_generated_train_and_test_splits(root):
    dm = make(root)
    assert dm.label_names("train") == list(GENERATED_CLASSES) and len(GENERATED_CLASSES) == 20
    assert len(dm.train_set) == 60 and len(dm.test_set) == 40
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (8, 3, 32, 32) and labels.dtype == torch.int64
    # the two splits are drawn with different seeds: no identical test image in train
    train0 = dm.train_set.samples[0][0].read_bytes()
    assert all(p.read_bytes() != train0 for p, _ in dm.test_set.samples)


def test_k_shot_and_num_labels_subsets_are_balanced_and_seeded(root):
    dm = make(root, shots=2, subset_seed=1)
    labels = [dm.train_set.dataset.samples[i][1] for i in dm.train_set.indices]
    assert sorted(labels) == sorted(list(range(20)) * 2)
    again = make(root, shots=2, subset_seed=1)
    assert dm.train_set.indices == again.train_set.indices
    other = make(root, shots=2, subset_seed=2)
    assert other.train_set.indices != dm.train_set.indices
    total = make(root, num_labels=40, subset_seed=1)  # 40 labels = 2 per class
    assert total.train_set.indices == dm.train_set.indices
    with pytest.raises(ValueError, match="not a multiple"):
        make(root, num_labels=30)
    with pytest.raises(ValueError, match="fewer than 5 per class"):
        make(root, shots=5)
    with pytest.raises(ValueError, match="either"):
        ClassificationDataModule(num_labels=40, shots=2)


def test_balanced_subset_picks_per_class_without_replacement():
    labels = [0, 1, 0, 1, 0, 2, 2, 2]
    idx = balanced_subset(labels, 2, 3, seed=0)
    assert len(set(idx)) == 6 and sorted(labels[i] for i in idx) == [0, 0, 1, 1, 2, 2]


def test_transforms_and_limited_label_noise():
    mean, std = CIFAR10.stats
    img = torch.full((3, 32, 32), 128, dtype=torch.uint8)
    ev = build_classification_transform("cifar", 32, mean, std, train=False)(img)
    expected = (128 / 255 - torch.tensor(mean)) / torch.tensor(std)
    torch.testing.assert_close(ev[:, 0, 0], expected)
    torch.manual_seed(0)
    noisy = build_classification_transform("none", 32, mean, std, train=True, noise_std=0.1)(img)
    assert (noisy - ev).std().item() == pytest.approx(0.1, rel=0.1)
    with pytest.raises(ValueError, match="preset"):
        build_classification_transform("autoaugment", 32, mean, std, train=True)


def test_missing_torchvision_data_explains_the_fix(tmp_path):
    dm = ClassificationDataModule(source="cifar10", root=str(tmp_path))
    with pytest.raises(RuntimeError, match="download=true"):
        dm.setup("fit")


def test_val_fraction_holds_out_training_images_with_the_eval_transform(root):
    from ramlico.cli.train import select_metric

    dm = make(root, val_fraction=0.25, val_seed=3, train_preset="basic")
    assert dm.val_splits == ["val"] and select_metric(None, dm) == "val/val/top1"
    assert len(dm.train_set) == 45 and len(dm.val_set) == 15  # 60 training images in all
    held = {dm.val_set.dataset.samples[i][0] for i in dm.val_set.indices}
    kept = {dm.train_set.dataset.samples[i][0] for i in dm.train_set.indices}
    assert not held & kept and len(held | kept) == 60
    # the held-out images are read with the evaluation transform (no random flip)
    first = [dm.val_set[0][0] for _ in range(3)]
    assert all(torch.equal(first[0], x) for x in first)
    (loader,) = dm.val_dataloader()
    assert len(loader.dataset) == 15
    again = make(root, val_fraction=0.25, val_seed=3)
    assert list(again.val_set.indices) == list(dm.val_set.indices)  # seeded
    assert make(root).val_dataloader() == [] and make(root).val_splits == []


def test_a_corrupt_folder_image_fails_before_training(tmp_path):
    from PIL import Image

    from ramlico.data.check import DataCheckError

    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("RGB", (8, 8), (9, 9, 9)).save(tmp_path / split / cls / "a.png")
    (tmp_path / "train" / "dog" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    trees = {"train_dir": "train", "test_dir": "val"}
    dm = ClassificationDataModule(source="folder", root=str(tmp_path), image_size=8, **trees)
    with pytest.raises(
        DataCheckError,
        match=r"train: 1 of 3 images are missing or unreadable: "
        r".*dog/b.png \(unreadable",
    ):
        dm.setup("fit")
    dm = ClassificationDataModule(
        source="folder", root=str(tmp_path), image_size=8, skip_bad_images=True, **trees
    )
    dm.setup("fit")
    assert len(dm.train_set) == 2
