"""ResumableSampler, SeededSamples, sample_seed: seeded order, DDP shards, resume offsets."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from ramlico.data.datamodule import MultiLabelDataModule
from ramlico.data.sampling import (
    ResumableSampler,
    SampleKey,
    SeededSamples,
    get_rng_states,
    sample_seed,
    set_rng_states,
)
from ramlico.data.transforms import build_train_transform


class Noise(Dataset):
    """Item i: (i, a draw from torch's global generator) - stands in for a random augmentation."""

    def __init__(self, n: int = 10) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        return i, torch.rand(3)


def test_sample_seed_is_deterministic_and_separates_keys():
    assert sample_seed(0, 1, 2) == sample_seed(0, 1, 2)
    seeds = {sample_seed(s, e, i) for s in range(3) for e in range(3) for i in range(50)}
    assert len(seeds) == 3 * 3 * 50
    assert sample_seed(1, 0) != sample_seed(0, 1)
    assert all(0 <= s < 2**63 for s in seeds)


def test_order_depends_on_seed_and_epoch_only():
    a = ResumableSampler(range(20), seed=3)
    torch.manual_seed(123)  # global state is irrelevant
    first = list(a)
    torch.manual_seed(7)
    assert list(ResumableSampler(range(20), seed=3)) == first
    assert sorted(first) == list(range(20)) and first != list(range(20))
    a.set_epoch(1)
    assert list(a) != first and sorted(a) == list(range(20))
    assert list(ResumableSampler(range(20), seed=4)) != first
    fixed = ResumableSampler(range(5), shuffle=False)
    fixed.set_epoch(3)
    assert list(fixed) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("n", [9, 10, 12])
def test_ranks_shard_like_distributed_sampler(n):
    shards = [list(ResumableSampler(range(n), seed=1, num_replicas=3, rank=r)) for r in range(3)]
    assert len({len(s) for s in shards}) == 1  # same number of batches on every rank
    full = ResumableSampler(range(n), seed=1, num_replicas=1, rank=0).order(0)
    padded = full + full[: (-n) % 3]
    assert [padded[r::3] for r in range(3)] == shards
    assert set().union(*shards) == set(range(n))
    dropped = [ResumableSampler(range(n), seed=1, num_replicas=3, rank=r, drop_last=True)
               for r in range(3)]  # fmt: skip
    assert sum(len(list(s)) for s in dropped) == n - n % 3


def test_start_at_skips_the_trained_samples_of_that_epoch_only():
    s = ResumableSampler(range(10), seed=0, with_epoch=True)
    order = s.order(2)
    s.start_at(2, 4)
    assert s.epoch == 2 and s.start == 4 and len(s) == 10  # len: the full epoch
    it = iter(s)
    assert next(it) == SampleKey(2, order[4])  # an iterator dropped early ...
    assert [k.index for k in s] == order[4:]  # ... keeps the offset; a finished one clears it
    assert [k.index for k in s] == order
    s.start_at(2, 4)
    s.set_epoch(3)  # another epoch: no offset
    assert [k.index for k in s] == s.order(3)
    with pytest.raises(ValueError):
        s.start_at(0, -1)


def test_state_dict_round_trip_and_layout_checks():
    s = ResumableSampler(range(10), seed=5)
    s.start_at(1, 3)
    state = s.state_dict()
    assert state == {"epoch": 1, "start": 3, "seed": 5, "shuffle": True, "num_replicas": 1}
    t = ResumableSampler(range(10), seed=5)
    t.load_state_dict(state)
    assert list(t) == list(s) == s.order(1)[3:]
    with pytest.raises(ValueError, match="seed"):
        ResumableSampler(range(10), seed=6).load_state_dict(state)


def test_seeded_samples_depend_on_seed_epoch_index_only():
    data = SeededSamples(Noise(), seed=1)
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    x = data[SampleKey(2, 5)][1]
    assert torch.equal(torch.random.get_rng_state(), before)  # global state restored
    torch.manual_seed(99)
    assert torch.equal(data[(2, 5)][1], x)
    assert not torch.equal(data[SampleKey(3, 5)][1], x)  # new epoch, new augmentation
    assert not torch.equal(data[SampleKey(2, 6)][1], x)
    assert not torch.equal(SeededSamples(Noise(), seed=2)[SampleKey(2, 5)][1], x)
    assert torch.equal(data[5][1], data[SampleKey(0, 5)][1])  # an int index is epoch 0
    assert data.n == 10  # attributes of the wrapped dataset


def test_rng_states_survive_a_weights_only_checkpoint():
    torch.manual_seed(0)
    states = get_rng_states()
    first = (torch.rand(3), random.random(), np.random.rand())
    buffer = io.BytesIO()
    torch.save(states, buffer)
    buffer.seek(0)
    set_rng_states(torch.load(buffer, weights_only=True))
    again = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(first[0], again[0]) and first[1:] == again[1:]


class Images(Dataset):
    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (6, 3, 40, 40), dtype=torch.uint8, generator=gen)
        self.transform = build_train_transform(32, preset="ram")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.images[i])


def test_augmentations_do_not_depend_on_the_number_of_workers():
    def batches(workers: int) -> list[torch.Tensor]:
        sampler = ResumableSampler(range(6), seed=0, with_epoch=True)
        sampler.set_epoch(1)
        loader = DataLoader(SeededSamples(Images(), seed=0), batch_size=4, sampler=sampler,
                            num_workers=workers)  # fmt: skip
        return list(loader)

    torch.manual_seed(1)
    one = batches(0)
    torch.manual_seed(2)
    two = batches(2)
    assert len(one) == len(two) == 2
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a, b)


def _generated(tmp_path: Path, **kwargs) -> MultiLabelDataModule:
    small = {"n_train": 22, "n_test": 24, "image_size": 32, "seed": 0}
    dm = MultiLabelDataModule(source="generated", root=str(tmp_path / "gen"), generated=small,
                              image_size=32, batch_size=4, **kwargs)  # fmt: skip
    dm.setup("fit")
    return dm


def test_datamodule_restores_the_position_and_seed(tmp_path, monkeypatch, caplog):
    dm = _generated(tmp_path, seed=3)
    assert dm.state_dict() == {}  # no trainer: nothing to save
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, ResumableSampler) and loader.sampler.seed == 3
    assert isinstance(loader.dataset, SeededSamples) and loader.dataset.seed == 3
    assert loader.dataset.label_names == dm.train_dataset.label_names
    state = {"train_position": {"epoch": 1, "batches": 2}, "batch_size": 4, "num_replicas": 1,
             "seed": 3}  # fmt: skip
    dm.load_state_dict(state)
    resumed = dm.train_dataloader()
    assert resumed.sampler.epoch == 1 and resumed.sampler.start == 8
    expected = list(_epoch_loader(dm, 1))[2:]
    got = list(resumed)
    assert len(got) == len(expected) == 4  # 22 images, batches of 4: 6 batches, 2 trained
    for (images, targets), (images_e, targets_e) in zip(got, expected, strict=True):
        assert torch.equal(images, images_e) and torch.equal(targets, targets_e)
    dm.load_state_dict({**state, "batch_size": 8})
    with caplog.at_level("WARNING", logger="ramlico.data.sampling"):
        dm.train_dataloader()
    assert "'batch_size': (8, 4)" in caplog.text  # a changed layout is reported
    dm.teardown("fit")  # the end of that fit: a new fit without ckpt_path starts at epoch 0
    assert (dm.train_dataloader().sampler.epoch, dm.train_dataloader().sampler.start) == (0, 0)
    monkeypatch.setenv("PL_GLOBAL_SEED", "17")
    assert _generated(tmp_path).seed == 17  # default: the run's seed
    monkeypatch.delenv("PL_GLOBAL_SEED")
    assert _generated(tmp_path).seed == 0


def _epoch_loader(dm: MultiLabelDataModule, epoch: int) -> DataLoader:
    fresh = MultiLabelDataModule(**dm.hparams)
    fresh.setup("fit")
    loader = fresh.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return loader


class _IndexModel(L.LightningModule):
    def __init__(self, out: str) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.out = out

    def training_step(self, batch, batch_idx):
        index, noise = batch
        with open(self.out, "a") as f:
            f.write(json.dumps([self.global_rank, self.current_epoch, index.tolist(),
                                noise.sum().item()]) + "\n")  # fmt: skip
        return self.layer(noise[:, :1]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        sampler = ResumableSampler(Noise(9), seed=0, with_epoch=True)
        return DataLoader(SeededSamples(Noise(9), seed=0), batch_size=2, sampler=sampler)


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_gloo_available(), reason="torch built without gloo")
def test_ddp_keeps_the_sampler_and_shards_each_epoch(tmp_path):
    out = tmp_path / "seen.jsonl"
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp_spawn",
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    trainer.fit(_IndexModel(str(out)))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for epoch in range(2):
        order = ResumableSampler(range(9), seed=0, num_replicas=1, rank=0).order(epoch)
        padded = order + order[:1]
        for rank in range(2):
            seen = [i for r, e, idx, _ in rows if (r, e) == (rank, epoch) for i in idx]
            assert seen == padded[rank::2]  # Lightning kept ResumableSampler (no wrapper)
    expected = {(e, i): SeededSamples(Noise(9), 0)[SampleKey(e, i)][1].sum().item()
                for e in range(2) for i in range(9)}  # fmt: skip
    assert len(rows) == 2 * 2 * 3
    for _, e, idx, total in rows:  # augmentation randomness seeded per sample in each process
        assert total == pytest.approx(sum(expected[(e, i)] for i in idx), abs=1e-5)
