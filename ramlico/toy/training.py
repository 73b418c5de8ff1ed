"""Pieces shared by the toy models' training scripts (:mod:`ramlico.toy.train_clip`,
:mod:`ramlico.toy.train_vfm`): the learning-rate schedule, CPU time, the step loader, recipe
flags and checks, and the resume state.

Both scripts train on an endless seeded stream where batch ``s`` is a pure function of
``(seed, s)``; :class:`StepDataset` turns steps ``start .. stop - 1`` of such a stream into a
map-style dataset, so a ``DataLoader`` worker renders ahead and a resumed run continues exactly at
its step.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "StepDataset",
    "add_recipe_arguments",
    "check_recipe",
    "cosine_lr",
    "cpu_seconds",
    "identity_collate",
    "load_state",
    "one_thread",
    "recipe_from_args",
    "save_state",
]


def cosine_lr(step: int, lr: float, warmup_steps: int, steps: int) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay from ``lr`` to 0 at ``steps``.

    ``lr_t = lr (t + 1) / W`` for ``t < W``, else ``lr / 2 (1 + cos(pi (t - W) / (T - W)))``.
    """
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return 0.5 * lr * (1.0 + math.cos(math.pi * progress))


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def one_thread(_: int) -> None:
    """``worker_init_fn``: one torch thread per rendering worker."""
    torch.set_num_threads(1)


def identity_collate(batch: Any) -> Any:
    """``collate_fn`` of an unbatched loader: one step's batch as it is."""
    return batch


class StepDataset(torch.utils.data.Dataset):
    """Steps ``start .. stop - 1`` of ``stream`` (``stream(step)`` -> that step's batch)."""

    def __init__(self, stream: Callable[[int], Any], start: int, stop: int) -> None:
        self.stream, self.start, self.stop = stream, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> Any:
        return self.stream(self.start + i)


def check_recipe(recipe: Any) -> None:
    """The checks every toy recipe shares: ``steps``, ``batch_size``, ``threads`` >= 1,
    ``0 <= warmup_steps <= steps`` and ``lr > 0``; a ValueError names the flag."""
    for name in ("steps", "batch_size", "threads"):
        if getattr(recipe, name) < 1:
            flag, value = name.replace("_", "-"), getattr(recipe, name)
            raise ValueError(f"--{flag} must be >= 1, got {value}")
    if not 0 <= recipe.warmup_steps <= recipe.steps:
        raise ValueError(f"--warmup-steps must be in [0, steps], got {recipe.warmup_steps}")
    if recipe.lr <= 0:
        raise ValueError(f"--lr must be > 0, got {recipe.lr}")


def add_recipe_arguments(parser: argparse.ArgumentParser, recipe_cls: type) -> None:
    """One ``--flag`` per field of the recipe dataclass (``model_name`` excepted)."""
    defaults = recipe_cls()
    for f in dataclasses.fields(recipe_cls):
        if f.name == "model_name":
            continue
        default = getattr(defaults, f.name)
        parser.add_argument(
            f"--{f.name.replace('_', '-')}", type=type(default), default=default,
            help=f"default {default}",
        )  # fmt: skip


def recipe_from_args(recipe_cls: type, args: argparse.Namespace) -> Any:
    """The recipe the parsed flags describe (``model_name`` keeps its default)."""
    names = [f.name for f in dataclasses.fields(recipe_cls) if f.name != "model_name"]
    return recipe_cls(**{name: getattr(args, name) for name in names})


def load_state(
    path: Path, recipe: Any, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[int, dict[str, float]]:
    """Restore a resume state written by :func:`save_state`; returns ``(step, spent)``.

    Raises:
        ValueError: the state was written by another recipe.
    """
    state = torch.load(path, weights_only=True)
    if state["recipe"] != dataclasses.asdict(recipe):
        raise ValueError(
            f"{path} was written by another recipe {state['recipe']}; resume with the same "
            "arguments or choose another --out"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["step"], state["spent"]


def save_state(
    path: Path, recipe: Any, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
    step: int, spent: dict[str, float],
) -> None:  # fmt: skip
    """Write what :func:`load_state` needs to continue after ``step`` steps."""
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "spent": spent, "recipe": dataclasses.asdict(recipe)}, path)  # fmt: skip
