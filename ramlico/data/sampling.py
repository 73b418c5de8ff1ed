"""Seeded, resumable training order and per-sample augmentation seeds (exact mid-epoch resume).

A killed run resumed from ``last.ckpt`` must train on exactly the batches an uninterrupted run
would have trained on, with exactly the same augmentations. Lightning 2.6 alone does not do that:
on a mid-epoch resume it restores the loop counters, starts a *fresh* iterator over the training
loader and ends the epoch after the remaining number of batches, so it trains on the first
batches of a new iterator (with a ``shuffle=True`` loader: a new random order drawn from the global
generator, which checkpoints do not hold), and augmentations drawn from the global generator differ
too. The pieces here remove every dependence on global random state:

* :class:`ResumableSampler`: the order of epoch ``e`` is a permutation drawn from
  ``(seed, e)`` alone, sharded over DDP ranks like ``DistributedSampler`` (it *is* one, so
  Lightning's ``use_distributed_sampler`` keeps it instead of wrapping it), and it can start
  epoch ``e`` at a sample offset (:meth:`ResumableSampler.start_at`).
* :class:`SeededSamples`: wraps a dataset; item ``SampleKey(epoch, index)`` runs
  ``dataset[index]`` with torch's CPU generator seeded from ``(seed, epoch, index)`` (state saved
  and restored around the call), so augmentations depend neither on the order nor on the number
  of DataLoader workers.
* :func:`get_rng_states` / :func:`set_rng_states`: the global generators (torch CPU and CUDA,
  Python, NumPy) as checkpoint-safe values, for randomness *inside the model* (dropout, random
  masks): ``RamlicoModule`` saves them in every checkpoint and restores them when a fit resumes.
  Data loading never draws from them (the loaders own their generators), so the model sees the
  same random stream as in the uninterrupted run.
* :func:`loop_position`: the (epoch, batch) the fit loop will train next, read from Lightning's
  loop progress; a datamodule saves it in its ``state_dict`` (Lightning writes that into every
  checkpoint and restores it before building any loader) and passes it back to the sampler.

A datamodule gets all of it from :class:`ResumableTrainData` and :func:`resumable_loader`
(``MultiLabelDataModule`` does exactly this)::

    class MyData(ResumableTrainData, LightningDataModule):
        def train_dataloader(self):
            return self.resumable_loader(self.train_set, batch_size=32, seed=self.seed,
                                         shuffle=True, num_workers=4)
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sized
from typing import Any, NamedTuple, cast

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ramlico.utils import get_logger

log = get_logger(__name__)

__all__ = [
    "ResumableDataLoader",
    "ResumableSampler",
    "ResumableTrainData",
    "SampleKey",
    "SeededSamples",
    "get_rng_states",
    "loop_position",
    "resumable_loader",
    "sample_seed",
    "set_rng_states",
]

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def sample_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed mixed from ``seed`` and ``keys`` (e.g. epoch, sample index); splitmix64.

    Distinct tuples give unrelated seeds (unlike ``seed + epoch``, where (1, 0) equals (0, 1)).
    """
    h = _splitmix64(seed & _MASK64)
    for k in keys:
        h = _splitmix64(h ^ (k & _MASK64))
    return h >> 1


class SampleKey(NamedTuple):
    """What :class:`ResumableSampler` yields with ``with_epoch=True``: the epoch and the index."""

    epoch: int
    index: int  # type: ignore[assignment]  # a field named like tuple.index, on purpose


class ResumableSampler(DistributedSampler):
    """Per-epoch permutation from ``(seed, epoch)``, sharded over ranks, resumable at an offset.

    Epoch ``e`` orders all ``n`` indices by ``torch.randperm(n)`` of a generator seeded with
    ``sample_seed(seed, e)`` (``shuffle=False``: ``0 .. n-1``), pads by repeating the first indices
    (or drops the tail, ``drop_last=True``) to a multiple of ``num_replicas``, and gives rank ``r``
    the positions ``r, r + num_replicas, ...`` (``DistributedSampler``'s layout). Nothing depends on
    global random state, so the same (seed, epoch) always gives the same order.

    Args:
        dataset: anything with ``len``.
        shuffle: permute every epoch; False keeps the dataset order.
        seed: seed of the permutations.
        num_replicas, rank: DDP layout; default from ``torch.distributed`` when it is initialised,
            else 1 and 0.
        drop_last: drop the tail instead of padding when ``n`` is not a multiple of num_replicas.
        with_epoch: yield ``SampleKey(epoch, index)`` (for :class:`SeededSamples`) instead of ints.

    Epoch and resume:
        ``set_epoch(e)`` (Lightning calls it before every training epoch) selects the order.
        ``start_at(e, k)`` makes the iteration of epoch ``e`` skip this rank's first ``k`` samples
        (``k`` = batches already trained x batch size); it applies to every iteration of epoch
        ``e`` (an iterator may be created and dropped before training starts) and is forgotten once
        an iteration of epoch ``e`` runs to its end or ``set_epoch`` moves to another epoch.
        ``len()`` stays the full epoch length (Lightning counts the epoch's batches from it and
        expects a resumed iterator to yield only the remaining ones).
        ``start_at`` also sets the epoch, so a loader iterated before ``set_epoch`` is right too.
    """

    def __init__(
        self,
        dataset: Sized,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
        with_epoch: bool = False,
    ) -> None:
        distributed = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if distributed else 1
        if rank is None:
            rank = dist.get_rank() if distributed else 0
        super().__init__(dataset, num_replicas, rank, shuffle, seed, drop_last)  # type: ignore[arg-type]
        self.with_epoch = with_epoch
        self._start: tuple[int, int] | None = None  # (epoch, samples of this rank to skip)

    def set_epoch(self, epoch: int) -> None:
        if self._start is not None and self._start[0] != epoch:
            self._start = None
        self.epoch = epoch

    def start_at(self, epoch: int, samples: int) -> None:
        """Resume: in epoch ``epoch`` skip this rank's first ``samples`` samples (0: no skip)."""
        if epoch < 0 or samples < 0:
            raise ValueError(f"need epoch >= 0 and samples >= 0, got {epoch} and {samples}")
        self.epoch = epoch
        self._start = (epoch, samples) if samples else None

    @property
    def start(self) -> int:
        """Samples of this rank skipped at the start of the current epoch (pending resume)."""
        return self._start[1] if self._start is not None and self._start[0] == self.epoch else 0

    def order(self, epoch: int) -> list[int]:
        """This rank's indices of epoch ``epoch``, from the start (no resume offset)."""
        n = len(self.dataset)  # type: ignore[arg-type]
        if self.shuffle:
            gen = torch.Generator().manual_seed(sample_seed(self.seed, epoch))
            indices = torch.randperm(n, generator=gen).tolist()
        else:
            indices = list(range(n))
        if self.drop_last:
            indices = indices[: self.total_size]
        elif len(indices) < self.total_size:
            pad = self.total_size - len(indices)
            indices += (indices * math.ceil(pad / max(len(indices), 1)))[:pad]
        return indices[self.rank : self.total_size : self.num_replicas]

    def __iter__(self) -> Iterator[Any]:
        epoch, start = self.epoch, self.start
        for index in self.order(epoch)[start:]:
            yield SampleKey(epoch, index) if self.with_epoch else index
        if self._start is not None and self._start[0] == epoch:
            self._start = None  # the resumed epoch is done; later epochs start at 0

    def state_dict(self) -> dict[str, Any]:
        """Epoch, pending resume offset and the layout (to check a restore against)."""
        return {
            "epoch": self.epoch,
            "start": self.start,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "num_replicas": self.num_replicas,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore epoch and offset; a different seed, shuffle or num_replicas raises ValueError."""
        for key in ("seed", "shuffle", "num_replicas"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(
                    f"cannot resume the training order: saved {key}={state[key]!r}, now "
                    f"{getattr(self, key)!r} (resume with the same data seed, shuffle and devices)"
                )
        self.start_at(int(state["epoch"]), int(state.get("start", 0)))


class SeededSamples(Dataset):
    """``dataset`` with per-sample randomness seeded from ``(seed, epoch, index)``.

    ``self[SampleKey(epoch, index)]`` (or ``self[(epoch, index)]``) returns ``dataset[index]``
    computed with torch's CPU generator seeded by ``sample_seed(seed, epoch, index)``; the
    generator's previous state is restored afterwards, so nothing else sees the change. A plain
    int ``index`` means epoch 0. Transforms that draw from torch's global generator (torchvision's
    random transforms, ``ramlico.data.transforms``) thus give the same result for the same sample
    of the same epoch whatever the loading order, process or number of workers. Python's ``random``
    and NumPy are not seeded: transforms used here must draw from torch.

    Attributes other than ``dataset`` and ``seed`` are read from the wrapped dataset.
    """

    def __init__(self, dataset: Any, seed: int = 0) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: SampleKey | tuple[int, int] | int) -> Any:
        epoch, index = (0, key) if isinstance(key, int) else key
        generator = torch.default_generator
        state = generator.get_state()
        generator.manual_seed(sample_seed(self.seed, epoch, index))
        try:
            return self.dataset[index]
        finally:
            generator.set_state(state)

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "seed") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


def loop_position(trainer: Any) -> dict[str, int]:
    """``{"epoch", "batches"}``: where the fit loop of ``trainer`` resumes, from its progress.

    ``batches`` = training batches of epoch ``epoch`` already fetched by the loop (Lightning's
    ``batch_progress.current.ready``), which is where Lightning resumes the epoch from this
    checkpoint. At the end of an epoch (all batches fetched) it is ``(epoch + 1, 0)``. Outside
    ``trainer.fit`` (e.g. testing) ``{"epoch": current_epoch, "batches": 0}``. Checkpoints saved
    during a mid-epoch validation hold the position of that validation, as Lightning does.
    """
    epoch = int(trainer.current_epoch)
    if trainer.state.fn != "fit":
        return {"epoch": epoch, "batches": 0}
    done = int(trainer.fit_loop.epoch_loop.batch_progress.current.ready)
    total = trainer.num_training_batches
    if done >= total:
        return {"epoch": epoch + 1, "batches": 0}
    return {"epoch": epoch, "batches": done}


def get_rng_states() -> dict[str, Any]:
    """The global random states: torch CPU (and CUDA if initialised), Python ``random``, NumPy.

    Values are tensors, ints, floats and tuples, so the dict loads with ``weights_only=True``.
    """
    legacy = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state(legacy=True))
    kind, keys, pos, has_gauss, gauss = legacy
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_states` returned (keys that are absent are left alone)."""
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "python" in states:
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in states:
        kind, keys, pos, has_gauss, gauss = states["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


class ResumableDataLoader(DataLoader):
    """The training DataLoader of :func:`resumable_loader`; resumable in Lightning's sense.

    Lightning warns "your dataloader is not resumable" on every mid-epoch resume unless the loader
    has ``state_dict`` / ``load_state_dict``, although this loader resumes exactly. Its state (the
    sampler's epoch, offset and layout) travels in the checkpoint with the fit loop, for
    inspection; the position itself is restored by the datamodule (:class:`ResumableTrainData`),
    which builds this loader already at the resumed position and warns if the layout (batch size,
    seed, devices) changed. So :meth:`load_state_dict` has nothing left to do.
    """

    def state_dict(self) -> dict[str, Any]:
        sampler = self.sampler
        return sampler.state_dict() if isinstance(sampler, ResumableSampler) else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore: the datamodule built this loader at the saved position."""


def resumable_loader(
    dataset: Any,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
    position: dict[str, int] | None = None,
    **loader_kwargs: Any,
) -> DataLoader:
    """Training DataLoader: :class:`ResumableSampler` + :class:`SeededSamples`, own generator.

    Args:
        dataset: the training set (map-style).
        batch_size: per-rank batch size.
        seed: seed of the order and of the per-sample randomness.
        shuffle: a new permutation every epoch (False: dataset order).
        position: ``{"epoch", "batches"}`` (:func:`loop_position` of the checkpoint): start that
            epoch after ``batches`` batches.
        loader_kwargs: other DataLoader arguments (num_workers, pin_memory, drop_last, ...; not
            sampler, shuffle, generator).

    The loader's own generator (seeded) supplies the worker base seeds, so creating iterators
    never draws from the global generator.
    """
    sampler = ResumableSampler(dataset, shuffle=shuffle, seed=seed, with_epoch=True)
    if position is not None:
        sampler.start_at(int(position["epoch"]), int(position["batches"]) * batch_size)
    return ResumableDataLoader(
        SeededSamples(dataset, seed),
        batch_size=batch_size,
        sampler=sampler,
        generator=torch.Generator().manual_seed(seed),
        **loader_kwargs,
    )


class ResumableTrainData:
    """Mixin for a ``LightningDataModule`` (list it first): exact mid-epoch resume of training.

    ``state_dict()`` (Lightning saves it in every checkpoint, under the datamodule's class name)
    holds :func:`loop_position` and the layout (batch size, seed, number of ranks) of the last
    :meth:`resumable_loader`; ``load_state_dict()`` (Lightning calls it on ``fit(ckpt_path=...)``
    before asking for any loader) keeps them for the next :meth:`resumable_loader`, which starts
    there (and warns if the layout changed: the resumed epoch then cannot continue exactly);
    ``teardown()`` forgets them, so a later ``fit`` without a checkpoint starts at epoch 0.
    A subclass overriding these hooks must call ``super()``.
    """

    _train_position: dict[str, int] | None = None
    _train_layout: dict[str, int] | None = None
    _saved_layout: dict[str, int] | None = None

    def resumable_loader(
        self, dataset: Any, batch_size: int, seed: int, shuffle: bool = True, **loader_kwargs: Any
    ) -> DataLoader:
        """:func:`resumable_loader` at the restored position (if any); records the layout."""
        loader = resumable_loader(
            dataset, batch_size, seed, shuffle, self._train_position, **loader_kwargs
        )
        sampler = loader.sampler
        assert isinstance(sampler, ResumableSampler)
        layout = {"batch_size": batch_size, "seed": seed, "num_replicas": sampler.num_replicas}
        self._train_layout = layout
        saved = self._saved_layout or {}
        changed = {k: (saved[k], v) for k, v in layout.items() if k in saved and saved[k] != v}
        if self._train_position is not None and changed:
            log.warning(
                "resuming with another %s (saved, now) than the checkpoint: the resumed epoch "
                "does not continue exactly where it stopped",
                changed,
            )
        if sampler.start:
            log.info(
                "resuming epoch %d after %d samples per rank (same order and augmentations as "
                "the uninterrupted run)",
                sampler.epoch,
                sampler.start,
            )
        return loader

    def state_dict(self) -> dict[str, Any]:
        """``{"train_position": loop_position(trainer), batch_size, seed, num_replicas}``."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return {}
        return {"train_position": loop_position(trainer), **(self._train_layout or {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Keep the saved position and layout for the next :meth:`resumable_loader`."""
        if "train_position" not in state:
            return
        self._train_position = {k: int(v) for k, v in state["train_position"].items()}
        self._saved_layout = {
            k: int(state[k]) for k in ("batch_size", "seed", "num_replicas") if k in state
        }

    def teardown(self, stage: str) -> None:
        """Forget the restored position (the fit that used it is over)."""
        self._train_position = None
        self._saved_layout = None
