"""Read ramlico checkpoints safely (``torch.load(..., weights_only=True)``) and restore their runs.

A checkpoint holds the trainable tensors, the resolved run config, the label names of every split
and how the run was launched (experiment, command-line overrides). :func:`restore_run` turns a
checkpoint plus the evaluation's own config and command line into the model and data configs to
use (``evaluate.py`` and ``predict.py`` both call it):

* the **model** is the checkpoint's, with the ``model.*`` overrides of the command line applied;
* the **data** is the checkpoint's (label space, image size, mean/std, files and folders), with the
  ``data.*`` overrides applied; paths under the checkpoint's ``data.root`` move with an overridden
  ``data.root``. A ``data=<group>`` override evaluates on other data, with the checkpoint's
  preprocessing (image size, mean, std);
* a requested ``experiment=`` or method that differs from the checkpoint's, or an explicit
  preprocessing override that differs from the checkpoint's, is a :class:`CheckpointMismatch`
  naming both values; :func:`check_label_space` does the same for label sets (a warning where the
  model is open-vocabulary and the change is harmless).

``use_checkpoint_config=false`` skips all of this and evaluates the config as composed.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from ramlico.data.base import RamlicoDataModule
from ramlico.utils import get_logger

__all__ = [
    "CheckpointMismatch",
    "PREPROCESSING_KEYS",
    "RestoredRun",
    "check_label_space",
    "command_line_overrides",
    "launch_info",
    "load_checkpoint",
    "load_trainable_weights",
    "restore_run",
    "with_checkpoint_choices",
]

log = get_logger(__name__)

#: data keys that define the model's input: the checkpoint's unless use_checkpoint_config=false
PREPROCESSING_KEYS = ("image_size", "mean", "std")
#: config groups whose choice a checkpoint's run recorded and ``with_checkpoint_choices`` reuses
RESTORED_GROUPS = ("experiment", "data", "model", "model/backbone")
#: top-level config groups (an override ``data=custom`` selects a group, ``data.root=x`` a key)
CONFIG_GROUPS = frozenset(
    p.name for p in (Path(__file__).resolve().parents[1] / "configs").iterdir() if p.is_dir()
)


class CheckpointMismatch(ValueError):
    """The checkpoint and the requested experiment / method / labels / preprocessing disagree."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by a ramlico run, with ``weights_only=True``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a ramlico checkpoint (no ``"ramlico"`` entry).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint not found: {path}. Checkpoints are written to "
            "logs/train/runs/<date>/checkpoints/ (last.ckpt is the latest)."
        )
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "ramlico" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(
            f"{path} is not a ramlico checkpoint (no 'ramlico' entry with the run config); "
            "it must be written by `python train.py`"
        )
    return ckpt


def load_trainable_weights(model: torch.nn.Module, path: str | Path) -> list[str]:
    """Initialise ``model`` from another run's trainable tensors (fine-tuning, ``init_ckpt=``).

    Every tensor of the checkpoint must exist in ``model`` with the same shape; the model's
    trainable tensors that the checkpoint lacks keep their initialisation (returned).

    Raises:
        ValueError: a tensor the model does not have, or a shape mismatch (named).
    """
    ckpt = load_checkpoint(path)
    state = ckpt["state_dict"]
    own = model.state_dict()
    unknown = sorted(k for k in state if k not in own)
    wrong = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    if unknown or wrong:
        detail = [f"unknown tensors {unknown[:5]}" if unknown else ""]
        detail += [
            f"shape mismatch {k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
            for k in wrong[:5]
        ]
        raise ValueError(
            f"init_ckpt={path} does not fit this model ({'; '.join(d for d in detail if d)}); "
            "use a checkpoint of the same method and backbone (layers, prompt lengths)"
        )
    model.load_state_dict(state, strict=False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    return sorted(trainable - set(state))


# ------------------------------------------------------------------------------ launch info
def _hydra_node(cfg: DictConfig) -> Any:
    if "hydra" in cfg:
        return cfg.hydra
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def command_line_overrides(cfg: DictConfig) -> list[str]:
    """The overrides the task was launched with (Hydra's ``overrides.task``); ``[]`` outside
    Hydra (a config composed in code)."""
    node = _hydra_node(cfg)
    return list(node.overrides.task) if node is not None else []


def launch_info(cfg: DictConfig) -> dict[str, Any]:
    """How a run was launched, for its checkpoint: ``experiment`` (or None), ``overrides`` (the
    command line) and ``choices`` (the config group chosen for ``data``, ``model``, ...)."""
    node = _hydra_node(cfg)
    if node is None:
        return {"experiment": None, "overrides": [], "choices": {}}
    raw = OmegaConf.to_container(node.runtime.choices, resolve=True) or {}
    assert isinstance(raw, dict)  # runtime.choices is a mapping
    choices = {str(k): v for k, v in raw.items() if not str(k).startswith("hydra")}
    return {
        "experiment": choices.get("experiment"),
        "overrides": list(node.overrides.task),
        "choices": choices,
    }


# ------------------------------------------------------------------------------ restoring
@dataclass
class RestoredRun:
    """What :func:`restore_run` rebuilt from a checkpoint.

    Attributes:
        path: the checkpoint file.
        ckpt: the loaded checkpoint (``state_dict``, ``ramlico``, ...).
        cfg: the evaluation config with ``model`` and ``data`` replaced by the restored ones.
        experiment: the experiment the checkpoint was trained with (None if not recorded).
        label_names: the checkpoint's label names per split (``train``, ``zsl``, ``gzsl``, ...).
        notes: what was taken from the command line instead of the checkpoint (for the log).
    """

    path: Path
    ckpt: dict[str, Any]
    cfg: DictConfig
    experiment: str | None
    label_names: dict[str, list[str]]
    notes: list[str] = field(default_factory=list)

    @property
    def model_cfg(self) -> DictConfig:
        return self.cfg.model

    @property
    def data_cfg(self) -> DictConfig:
        return self.cfg.data

    @property
    def preprocessing(self) -> dict[str, Any]:
        """``image_size``, ``mean``, ``std`` the model was trained with (absent keys omitted)."""
        data = self.cfg.data
        return {k: _plain(data.get(k)) for k in PREPROCESSING_KEYS if data.get(k) is not None}


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _parsed(overrides: Sequence[str]) -> tuple[dict[str, str], dict[str, Any]]:
    """(group overrides ``{group: choice}``, key overrides ``{dotted key: override}``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups, keys = {}, {}
    for o in OverridesParser.create().parse_overrides(list(overrides)):
        key = o.key_or_group
        if "/" in key or ("." not in key and key in CONFIG_GROUPS):
            groups[key] = str(o.value())
        else:
            keys[key] = o
    return groups, keys


def _changed_groups(overrides: dict[str, str], launch: dict[str, Any]) -> set[str]:
    """Groups the command line sets to another choice than the checkpoint's run had."""
    trained = dict(launch.get("choices") or {})
    trained.setdefault("experiment", launch.get("experiment"))
    return {g for g, choice in overrides.items() if trained.get(g) != choice}


def with_checkpoint_choices(args: Sequence[str]) -> list[str]:
    """``args`` plus the config groups of the run that wrote ``ckpt_path=...``.

    The experiment, ``data``, ``model`` and ``model/backbone`` choices of that run are added
    unless ``args`` choose them, so Hydra composes the evaluation with the same groups and every
    ``data.<key>=`` / ``model.<key>=`` of those groups is a valid override (``evaluate.py``
    calls this on its command line before composing). Nothing is added when ``args`` choose an
    experiment (it defines the groups; :func:`restore_run` then checks it against the
    checkpoint), with ``use_checkpoint_config=false``, or when the checkpoint cannot be read
    (the task reports it).
    """
    args = list(args)
    pairs = [a.split("=", 1) for a in args if "=" in a and not a.startswith("-")]
    values = {k.lstrip("+~"): v for k, v in pairs}
    if (
        not values.get("ckpt_path") or "experiment" in values
        or values.get("use_checkpoint_config", "").lower() in ("false", "0", "no", "off")
    ):  # fmt: skip
        return args
    try:
        launch = load_checkpoint(values["ckpt_path"])["ramlico"].get("launch") or {}
    except (FileNotFoundError, ValueError, RuntimeError):
        return args
    choices = launch.get("choices") or {}
    extra = [
        f"{group}={choices[group]}"
        for group in RESTORED_GROUPS
        if choices.get(group) and group not in values
    ]
    return extra + args


def _describe(experiment: str | None, target: str | None) -> str:
    return f"experiment={experiment} ({target})" if experiment else f"model {target}"


def _check_method(
    path: Path, saved: dict, info: dict, cfg: DictConfig, groups: set[str], requested: str | None
) -> None:
    """A requested experiment / model group must name the checkpoint's."""
    if not ({"experiment", "model"} & groups):
        return
    saved_target = (saved.get("model") or {}).get("_target_")
    trained = (info.get("launch") or {}).get("experiment")
    target = cfg.model.get("_target_")
    if target != saved_target or (requested and trained and requested != trained):
        raise CheckpointMismatch(
            f"ckpt_path={path} was trained with {_describe(trained, saved_target)}, but "
            f"{_describe(requested, target)} was requested. Drop experiment=/model= (the "
            "checkpoint's own config is used), evaluate on other data with data=<group> or "
            "data.<key>=..., or pass use_checkpoint_config=false"
        )


def _choice(cfg: DictConfig, group: str) -> str | None:
    node = _hydra_node(cfg)
    return None if node is None else node.runtime.choices.get(group)


def _restored_data(
    saved: dict, cfg: DictConfig, groups: set[str], keys: dict[str, Any], notes: list[str]
) -> dict[str, Any]:
    """The data config: the checkpoint's (or the requested group's) plus the data.* overrides."""
    saved_data = copy.deepcopy(saved.get("data") or {})
    if "data" in groups or not saved_data:
        data = _plain(cfg.data)
        # only keys the other data module has (a zero-shot module may take its backbone's)
        kept = {k: saved_data[k] for k in PREPROCESSING_KEYS if k in saved_data and k in data}
        changed = {k: (data.get(k), v) for k, v in kept.items() if data.get(k) != v}
        data.update(kept)
        if changed:
            notes.append(f"data={_choice(cfg, 'data') or cfg.data.get('source')}: preprocessing "
                         f"from the checkpoint {kept}")  # fmt: skip
        return data
    data = saved_data
    overridden = {k.split(".", 1)[1]: o for k, o in keys.items() if k.startswith("data.")}
    old_root = data.get("root")
    for key, override in overridden.items():
        if override.is_delete():
            data.pop(key.split(".")[0], None)
            continue
        node = OmegaConf.select(cfg, f"data.{key}", default=None)
        _set(data, key, _plain(node))
        notes.append(f"data.{key}={_plain(node)} (command line)")
    new_root = data.get("root")
    if "root" in overridden and isinstance(old_root, str) and old_root != new_root:
        for key, value in list(data.items()):
            if key != "root" and key not in overridden and isinstance(value, str):
                if value == old_root or value.startswith(old_root.rstrip("/") + "/"):
                    data[key] = str(new_root) + value[len(old_root.rstrip("/")) :]
    return data


def _set(tree: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[leaf] = value


def _check_preprocessing(path: Path, saved: dict, keys: dict[str, Any], cfg: DictConfig) -> None:
    saved_data = saved.get("data") or {}
    for key in PREPROCESSING_KEYS:
        if f"data.{key}" not in keys or key not in saved_data:
            continue
        requested = _plain(OmegaConf.select(cfg, f"data.{key}", default=None))
        if requested != saved_data[key]:
            raise CheckpointMismatch(
                f"data.{key}={requested} differs from the checkpoint's {saved_data[key]} "
                f"({path} was trained with it, and the model expects it). Drop the override "
                "(the checkpoint's value is used), or pass use_checkpoint_config=false"
            )


def restore_run(
    cfg: DictConfig, ckpt_path: str | Path | None = None, overrides: Sequence[str] | None = None
) -> RestoredRun:
    """Rebuild the model and data configs of the run that wrote ``ckpt_path`` (module docstring).

    Args:
        cfg: the evaluation (or prediction) config as composed.
        ckpt_path: the checkpoint (default ``cfg.ckpt_path``).
        overrides: the command line (default :func:`command_line_overrides`); only what it names
            explicitly is taken from ``cfg`` instead of the checkpoint.

    Raises:
        CheckpointMismatch: a requested experiment / method or preprocessing value that differs
            from the checkpoint's (the message names both).
    """
    path = Path(ckpt_path or cfg.ckpt_path)
    ckpt = load_checkpoint(path)
    info = ckpt["ramlico"]
    saved = info.get("config") or {}
    overrides = command_line_overrides(cfg) if overrides is None else list(overrides)
    chosen, keys = _parsed(overrides)
    groups = _changed_groups(chosen, info.get("launch") or {})
    _check_method(path, saved, info, cfg, groups, chosen.get("experiment"))
    _check_preprocessing(path, saved, keys, cfg)
    notes: list[str] = []
    model = _plain(cfg.model) if "model" in groups else copy.deepcopy(saved.get("model") or {})
    if not model:
        model = _plain(cfg.model)
    for key, override in keys.items():
        if key.startswith("model.") and not override.is_delete():
            node = OmegaConf.select(cfg, key, default=None)
            _set(model, key.split(".", 1)[1], _plain(node))
            notes.append(f"{key}={_plain(node)} (command line)")
    for group in sorted(g for g in groups if g.startswith("model/")):
        sub = group.split("/", 1)[1].replace("/", ".")
        _set(model, sub, _plain(OmegaConf.select(cfg, f"model.{sub}")))
        notes.append(f"{group}={_choice(cfg, group)} (command line)")
    data = _restored_data(saved, cfg, groups, keys, notes)
    restored = copy.deepcopy(cfg)
    with open_dict(restored):
        restored.model = OmegaConf.create(model)
        restored.data = OmegaConf.create(data)
    launch = info.get("launch") or {}
    return RestoredRun(
        path=path, ckpt=ckpt, cfg=restored, experiment=launch.get("experiment"),
        label_names={k: list(v) for k, v in (info.get("label_names") or {}).items()},
        notes=notes,
    )  # fmt: skip


def _differences(a: Sequence[str], b: Sequence[str]) -> str:
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    parts = []
    if only_a:
        parts.append(f"only in the checkpoint: {only_a[:10]}")
    if only_b:
        parts.append(f"only in this evaluation: {only_b[:10]}")
    return "; ".join(parts) or "same labels, other order"


def check_label_space(
    restored: RestoredRun, datamodule: RamlicoDataModule, open_vocabulary: bool
) -> None:
    """Compare the checkpoint's label names with the datamodule's.

    * A closed head (``open_vocabulary=False``, e.g. LICO's linear classifier) needs exactly the
      training labels, in order: otherwise :class:`CheckpointMismatch`.
    * An open-vocabulary model may score any labels, but a label the checkpoint was trained on
      must not be evaluated as unseen (ZSL would not be zero-shot): :class:`CheckpointMismatch`.
      Other differences (another seen set, other data) are logged as a warning.
    """
    trained = restored.label_names.get("train")
    if not trained:
        return
    now = list(datamodule.label_names("train"))
    if not open_vocabulary:
        if now != trained:
            raise CheckpointMismatch(
                f"{restored.path} was trained on {len(trained)} classes, this evaluation has "
                f"{len(now)} ({_differences(trained, now)}); the classifier head only scores "
                "its own classes: evaluate on data with the same classes (drop data=/data.* "
                "overrides)"
            )
        return
    space = datamodule.label_space
    unseen = list(space.unseen) if space is not None else []
    leaked = sorted(set(unseen) & set(trained))
    if leaked:
        raise CheckpointMismatch(
            f"labels {leaked[:10]} are unseen in this evaluation, but {restored.path} was trained "
            f"on them (its seen labels: {len(trained)}); ZSL/GZSL numbers would not be zero-shot. "
            "Use the checkpoint's label split (drop data.seen / data.unseen overrides), or pass "
            "use_checkpoint_config=false"
        )
    if now != trained:
        log.warning(
            "evaluating on other seen labels than the checkpoint was trained on (%s); the model "
            "is open-vocabulary, so every label is scored by its text embedding",
            _differences(trained, now),
        )
