"""ramlico.data.datamodule: seen-label training; ZSL and GZSL evaluation loaders per source."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from ramlico.data.datamodule import MultiLabelDataModule
from ramlico.data.labels import COCO_SEEN, COCO_UNSEEN
from ramlico.data.sampling import ResumableSampler

SMALL = {"n_train": 22, "n_test": 24, "image_size": 16}


def _generated(tmp_path: Path, **kwargs) -> MultiLabelDataModule:
    args = dict(source="generated", root=str(tmp_path / "gen"), generated=SMALL, image_size=16)
    dm = MultiLabelDataModule(**{**args, "batch_size": 4, "eval_batch_size": 8, **kwargs})
    dm.prepare_data()
    return dm


def test_generated_splits_and_targets(tmp_path: Path):
    dm = _generated(tmp_path)
    dm.setup("fit")
    space = dm.label_space
    assert dm.eval_splits == ["zsl", "gzsl"]
    assert dm.label_names("train") == list(space.seen) and len(space.seen) == 15
    assert dm.label_names("zsl") == list(space.unseen)
    assert dm.label_names("gzsl") == list(space.seen + space.unseen)
    images, targets = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 3, 16, 16) and targets.shape == (4, 15)

    rows = [json.loads(t) for t in (tmp_path / "gen" / "test.jsonl").read_text().splitlines()]
    with_unseen = [r for r in rows if set(r["labels"]) & set(space.unseen)]
    zsl_loader, gzsl_loader = dm.test_dataloader()
    zsl_targets = torch.cat([t for _, t in zsl_loader])
    gzsl_targets = torch.cat([t for _, t in gzsl_loader])
    assert zsl_targets.shape == (len(with_unseen), 5) and gzsl_targets.shape == (24, 20)
    # ZSL: only images with an unseen label, so every row has a positive
    assert (zsl_targets.sum(1) >= 1).all()
    # target columns follow label_names: column j of ZSL == unseen label j in the files
    expected = torch.tensor(
        [[float(name in r["labels"]) for name in dm.label_names("zsl")] for r in with_unseen]
    )
    assert torch.equal(zsl_targets, expected)
    expected_gzsl = torch.tensor(
        [[float(name in r["labels"]) for name in dm.label_names("gzsl")] for r in rows]
    )
    assert torch.equal(gzsl_targets, expected_gzsl)
    # unseen labels of the training file are dropped (never supervised) and counted
    assert dm.train_dataset is not None and dm.train_dataset.n_dropped_labels > 0


def test_val_fraction_holds_out_seeded_training_images(tmp_path: Path):
    dm = _generated(tmp_path, val_fraction=0.25)
    dm.setup("fit")
    assert dm.val_splits == ["seen"]
    train = [r.image for r in dm.train_dataset.records]
    val = [r.image for r in dm.val_dataset.records]
    assert len(val) == round(0.25 * 22) == 6 and len(train) == 16  # 22 training rows in all
    assert not set(train) & set(val)
    # the split depends on val_seed only: another run seed holds out the same images
    again = _generated(tmp_path, val_fraction=0.25, seed=7)
    again.setup("fit")
    assert [r.image for r in again.val_dataset.records] == val
    other = _generated(tmp_path, val_fraction=0.25, val_seed=1)
    other.setup("fit")
    assert [r.image for r in other.val_dataset.records] != val
    # targets over the seen labels only (unseen labels are never looked at before the test)
    (loader,) = dm.val_dataloader()
    _, targets = next(iter(loader))
    assert targets.shape[1] == 15 and dm.val_dataset.label_names == dm.label_space.seen
    limited = _generated(tmp_path, val_fraction=0.25, val_max_images=4)
    limited.setup("fit")
    assert [len(v.dataset) for v in limited.val_dataloader()] == [4]


def test_no_validation_data_means_no_val_loader(tmp_path: Path):
    dm = _generated(tmp_path)  # val_fraction=0, no val_file
    dm.setup("fit")
    assert dm.val_splits == [] and dm.val_dataloader() == []
    assert len(dm.train_dataset) == 22
    with pytest.raises(ValueError, match=r"data.val_fraction must be in \[0, 1\), got 1.5"):
        _generated(tmp_path, val_fraction=1.5)


def test_train_shuffle_modes(tmp_path: Path):
    once_a = _generated(tmp_path, train_shuffle="once", seed=1)
    once_a.setup("fit")
    once_b = MultiLabelDataModule(
        source="generated",
        root=str(tmp_path / "gen"),
        generated=SMALL,
        train_shuffle="once",
        seed=1,
    )
    once_b.setup("fit")
    order = [r.image.name for r in once_a.train_dataset.records]
    assert order == [r.image.name for r in once_b.train_dataset.records]
    assert order != sorted(order) and sorted(order) == [f"{i:05d}.png" for i in range(22)]
    once_sampler = once_a.train_dataloader().sampler
    assert isinstance(once_sampler, ResumableSampler) and not once_sampler.shuffle
    assert once_sampler.order(0) == once_sampler.order(1) == list(range(22))  # fixed order
    epoch = _generated(tmp_path)
    epoch.setup("fit")
    sampler = epoch.train_dataloader().sampler
    assert isinstance(sampler, ResumableSampler) and sampler.shuffle
    assert sampler.order(0) != sampler.order(1)  # reshuffled every epoch


def test_exclude_unseen_from_train(tmp_path: Path):
    dm = _generated(tmp_path, exclude_unseen_from_train=True)
    dm.setup("fit")
    rows = [json.loads(t) for t in (tmp_path / "gen" / "train.jsonl").read_text().splitlines()]
    unseen = set(dm.label_space.unseen)
    assert len(dm.train_dataset) == sum(1 for r in rows if not set(r["labels"]) & unseen)
    assert dm.train_dataset.n_dropped_labels == 0


def _write_custom(tmp_path: Path, png) -> tuple[Path, Path]:
    for name in "abcd":
        png(tmp_path / "img" / f"{name}.png")
    train = tmp_path / "train.csv"
    train.write_text("image,labels\na.png,dog|cat\nb.png,cat|zebra\n")
    test = tmp_path / "test.jsonl"
    test.write_text(
        '{"image": "c.png", "labels": ["dog", "zebra"]}\n{"image": "d.png", "labels": ["cat"]}\n'
    )
    return train, test


def test_custom_with_label_lists(tmp_path: Path, png):
    train, test = _write_custom(tmp_path, png)
    dm = MultiLabelDataModule(
        source="custom", root=str(tmp_path), train_file=str(train), test_file=str(test),
        image_root=str(tmp_path / "img"), seen=["dog", "cat"], unseen=["zebra"], image_size=8,
        batch_size=2,
    )  # fmt: skip
    dm.setup("fit")
    assert dm.label_names("gzsl") == ["cat", "dog", "zebra"]
    _, targets = next(iter(dm.train_dataloader()))
    assert sorted(targets.tolist()) == [[1.0, 0.0], [1.0, 1.0]]
    zsl, gzsl = dm.test_dataloader()
    assert [r.image.name for r in zsl.dataset.records] == ["c.png"]
    assert torch.equal(next(iter(zsl))[1], torch.tensor([[1.0]]))
    assert torch.equal(next(iter(gzsl))[1], torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))


def test_custom_inferred_label_space_and_errors(tmp_path: Path, png):
    train, test = _write_custom(tmp_path, png)
    common = dict(source="custom", root=str(tmp_path), image_root=str(tmp_path / "img"))
    dm = MultiLabelDataModule(
        **common, train_file=str(train), test_file=str(test), unseen=["zebra"]
    )
    assert (dm.label_space.seen, dm.label_space.unseen) == (("cat", "dog"), ("zebra",))
    # a typo in the test file is not silently dropped
    test.write_text(
        '{"image": "c.png", "labels": ["dgo"]}\n{"image": "d.png", "labels": ["zebra"]}\n'
    )
    dm = MultiLabelDataModule(
        **common, train_file=str(train), test_file=str(test), seen=["cat", "dog"], unseen=["zebra"]
    )
    with pytest.raises(
        ValueError, match=r"1 labels are not among the 3 label names: \['dgo'\].*test.jsonl:1"
    ):
        dm.setup("test")


def test_closed_set_when_every_test_label_is_a_training_label(tmp_path: Path, png):
    train, test = _write_custom(tmp_path, png)  # train: dog, cat, zebra; test: dog, zebra, cat
    dm = MultiLabelDataModule(
        source="custom", root=str(tmp_path), train_file=str(train), test_file=str(test),
        image_root=str(tmp_path / "img"), image_size=8, batch_size=2,
    )  # fmt: skip
    dm.setup("fit")
    assert dm.label_space.unseen == () and dm.eval_splits == ["seen"]
    (loader,) = dm.test_dataloader()
    # columns: cat, dog, zebra; c.png = dog + zebra, d.png = cat
    assert torch.equal(next(iter(loader))[1], torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    # unseen=[] forces closed-set; a test label outside seen is then an error naming it
    forced = MultiLabelDataModule(
        source="custom", root=str(tmp_path), train_file=str(train), test_file=str(test),
        image_root=str(tmp_path / "img"), seen=["cat", "dog"], unseen=[],
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"\['zebra'\].*data.seen / data.unseen"):
        forced.setup("test")


def test_one_unseen_label_and_a_split_without_unseen_images(tmp_path: Path, png):
    train, test = _write_custom(tmp_path, png)
    args = dict(source="custom", root=str(tmp_path), train_file=str(train), test_file=str(test),
                image_root=str(tmp_path / "img"), image_size=8)  # fmt: skip
    dm = MultiLabelDataModule(**args, seen=["cat", "dog"], unseen=["zebra"])
    dm.setup("test")
    assert dm.eval_splits == ["zsl", "gzsl"] and dm.label_names("zsl") == ["zebra"]
    # unseen "bus" occurs in no test image: ZSL does not exist, GZSL is still evaluated
    dm = MultiLabelDataModule(**args, seen=["cat", "dog", "zebra"], unseen=["bus"])
    dm.setup("test")
    assert dm.eval_splits == ["gzsl"]
    assert list(dm.test_datasets) == ["gzsl"] and len(dm.test_datasets["gzsl"]) == 2


def test_val_file_over_the_seen_labels(tmp_path: Path, png):
    train, test = _write_custom(tmp_path, png)
    val = tmp_path / "val.csv"
    val.write_text("image,labels\na.png,dog|zebra\nc.png,cat\n")
    dm = MultiLabelDataModule(
        source="custom", root=str(tmp_path), train_file=str(train), test_file=str(test),
        val_file=str(val), val_fraction=0.5, image_root=str(tmp_path / "img"),
        seen=["cat", "dog"], unseen=["zebra"], image_size=8, batch_size=2,
    )  # fmt: skip
    dm.setup("fit")
    assert len(dm.train_dataset) == 2  # val_file wins: the training file is not split
    assert dm.val_splits == ["seen"]
    (loader,) = dm.val_dataloader()
    # columns cat, dog: the unseen zebra of a.png is dropped
    assert torch.equal(next(iter(loader))[1], torch.tensor([[0.0, 1.0], [1.0, 0.0]]))


def test_constructor_errors(tmp_path: Path):
    with pytest.raises(ValueError, match=r"unknown multilabel data source 'imgnet'; available: "
                       r"\['coco', 'custom', 'generated', 'nus_wide'\]"):  # fmt: skip
        MultiLabelDataModule(source="imgnet", root=str(tmp_path))
    with pytest.raises(ValueError, match="'imagenet' is a singlelabel source"):
        MultiLabelDataModule(source="imagenet", root=str(tmp_path))
    # a source's options belong to it: COCO has fixed label lists, so no seen/unseen
    allowed = r"it takes \['image_root', 'instances_train', 'instances_val'\]"
    with pytest.raises(TypeError, match=r"'coco': unknown option\(s\) \['seen'\]; " + allowed):
        MultiLabelDataModule(source="coco", root=str(tmp_path), seen=["dog"])
    with pytest.raises(ValueError, match="source='custom' needs train_file and test_file"):
        MultiLabelDataModule(source="custom", root=str(tmp_path), test_file="t.csv")
    with pytest.raises(ValueError, match=r"unknown keys \['size'\] in generated"):
        MultiLabelDataModule(source="generated", root=str(tmp_path), generated={"size": 3})
    with pytest.raises(ValueError, match="train_shuffle must be one of"):
        MultiLabelDataModule(root=str(tmp_path), train_shuffle="sometimes")
    dm = MultiLabelDataModule(root=str(tmp_path))
    with pytest.raises(RuntimeError, match="call setup"):
        dm.test_dataloader()


def test_coco_instances_source(coco_root: Path):
    dm = MultiLabelDataModule(source="coco", root=str(coco_root), image_size=8, batch_size=8)
    dm.setup("fit")
    assert dm.label_names("train") == list(COCO_SEEN)
    assert dm.label_names("zsl") == list(COCO_UNSEEN)
    _, train_targets = next(iter(dm.train_dataloader()))
    seen = dm.label_names("train")
    # train t0 person (+ dog dropped: unseen), t1 car, t2 only "dining table" -> all-negative
    assert sorted(train_targets.sum(0).nonzero().flatten().tolist()) == sorted(
        [seen.index("person"), seen.index("car")]
    )
    assert dm.train_dataset.n_no_label == 1
    zsl, gzsl = dm.test_dataloader()
    assert [r.image.name[-6:] for r in zsl.dataset.records] == ["00.jpg", "02.jpg"]  # dog, cup
    assert len(gzsl.dataset) == 4 and gzsl.dataset.n_no_label == 1


def test_coco_with_ram_json_test_file(coco_root: Path):
    ram = coco_root / "annotations" / "test_65_filtered.json"
    names = [f"/mnt/nas/x/COCO_val2014_{i:012d}.jpg" for i in range(2)]
    ram.write_text(
        json.dumps(
            {"classes": ["cup", "car"], "images": [[names[0], ["cup", "cup"]], [names[1], ["car"]]]}
        )
    )
    dm = MultiLabelDataModule(
        source="coco", root=str(coco_root), instances_val=str(ram), image_size=8
    )
    dm.setup("test")
    zsl, gzsl = dm.test_dataloader()
    assert len(zsl.dataset) == 1 and len(gzsl.dataset) == 2
    assert zsl.dataset.records[0].image == coco_root / "val2014" / "COCO_val2014_000000000000.jpg"
    assert torch.equal(
        next(iter(zsl))[1][0], torch.tensor([float(n == "cup") for n in COCO_UNSEEN])
    )


def test_nus_wide_source(nus_root: Path):
    dm = MultiLabelDataModule(source="nus_wide", root=str(nus_root), image_size=8, batch_size=8)
    dm.setup("fit")
    assert dm.label_names("train") == ["bravo", "canon", "eos", "nsw"]
    assert dm.label_names("zsl") == ["beach", "sky", "tattoo"]
    _, train_targets = next(iter(dm.train_dataloader()))
    assert train_targets.shape == (3, 4)
    zsl, gzsl = dm.test_dataloader()
    assert len(zsl.dataset) == 1 and len(gzsl.dataset) == 2  # one test image has no label at all
    assert torch.equal(next(iter(zsl))[1], torch.tensor([[0.0, 1.0, 0.0]]))


class _Recorder(L.LightningModule):
    """Records (dataloader_idx, number of target columns) of every test batch."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.seen.append((dataloader_idx, batch[1].shape[1]))


def test_trainer_runs_both_eval_loaders_in_order(tmp_path: Path):
    dm = _generated(tmp_path)
    model = _Recorder()
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
        enable_model_summary=False, limit_test_batches=1,
    )  # fmt: skip
    trainer.test(model, datamodule=dm)
    assert model.seen == [(0, 5), (1, 20)]
