"""A whole zero-shot benchmark in one command: methods x datasets (x backbones), one results table.

::

    python -m ramlico.zeroshot.benchmark --methods clip,dclip,waffle,cupl,lazsl \\
        --datasets imagenet,cub,pets,food101,places365 --backbones ViT-B-32,ViT-B-16,ViT-L-14 \\
        --out results/zero_shot paths.data_dir=/data

Each (backbone, method, dataset[, seed]) is one ``evaluate.py`` run, composed from
``configs/benchmark/zero_shot.yaml`` (what a method name means: its experiment and overrides)
plus the ``key=value`` overrides given on the command line, and written to
``<out>/<backbone>/<method>[-seed<s>]/<dataset>/``. A run whose ``zero_shot_metrics.json`` exists
is skipped (``--rerun`` repeats it), so an interrupted benchmark continues where it stopped. At the
end the runs are collected into one table, rows = method (and backbone), columns = datasets and
their mean, written as ``table.md``, ``table.csv`` and ``table.json`` under ``<out>``. Methods with
several seeds (WaffleCLIP) show ``mean +- std`` over the seeds.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ramlico.utils import get_logger
from ramlico.zeroshot.predictions import METRICS_FILE

__all__ = ["BenchmarkRun", "benchmark_runs", "main", "results_table", "run_benchmark"]

log = get_logger(__name__)
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "benchmark" / "zero_shot.yaml"
DEFAULT_BACKBONE = "default"  # keep the experiment's own backbone


@dataclass
class BenchmarkRun:
    """One evaluate.py run of the benchmark.

    Attributes:
        method, dataset, backbone: the cell it fills (``backbone`` ``"default"`` = the
            experiment's own); seed: the method's seed or ``None``.
        experiment: the experiment config; overrides: every override, in order.
        folder: the run directory (``paths.output_dir``).
    """

    method: str
    dataset: str
    backbone: str
    seed: int | None
    experiment: str
    overrides: list[str] = field(default_factory=list)
    folder: Path = Path()

    @property
    def done(self) -> bool:
        return (self.folder / METRICS_FILE).is_file()


def _fill(text: str, **values: Any) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def _scoped(overrides: Sequence[str], method: str, methods: dict) -> list[str]:
    """The overrides that apply to ``method``: unscoped ones and ``<method>:key=value``."""
    out = []
    for o in overrides:
        scope, sep, rest = o.partition(":")
        if sep and scope in methods:
            if scope == method:
                out.append(rest)
        else:
            out.append(o)
    return out


def benchmark_runs(
    methods: Sequence[str],
    datasets: Sequence[str],
    backbones: Sequence[str],
    out: str | Path,
    overrides: Sequence[str] = (),
    config: str | Path = CONFIG,
    seeds: Sequence[int] | None = None,
) -> list[BenchmarkRun]:
    """The runs of a benchmark, in table order (backbone, method, dataset, seed).

    Args:
        methods, datasets, backbones: names (methods from ``config``; backbones are open_clip
            model names or ``"default"``).
        out: the benchmark folder.
        overrides: ``key=value`` for every run (may use ``{dataset}``, ``{backbone}``);
            ``<method>:key=value`` for that method's runs only (e.g. ``lazsl:model.num_crops=60``).
        config: the benchmark YAML (``configs/benchmark/zero_shot.yaml``).
        seeds: replace the seed lists of the methods that have one.

    Raises:
        ValueError: an unknown method (the message lists the known ones).
    """
    spec = OmegaConf.to_container(OmegaConf.load(config), resolve=False)
    if not isinstance(spec, dict) or not isinstance(spec.get("methods"), dict):
        raise ValueError(f"{config}: a benchmark spec is a mapping with a 'methods' mapping")
    known = spec["methods"]
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; {config} defines {sorted(known)}")
    runs = []
    for backbone in backbones:
        for method in methods:
            entry = known[method]
            method_seeds = entry.get("seeds")
            run_seeds = (
                (list(seeds) if seeds is not None else method_seeds) if method_seeds else [None]
            )
            for dataset in datasets:
                for seed in run_seeds:
                    values = dict(dataset=dataset, backbone=backbone, seed=seed)
                    name = method if seed is None else f"{method}-seed{seed}"
                    folder = Path(out) / backbone / name / dataset
                    ov = [_fill(o, **values) for o in entry.get("overrides", [])]
                    if backbone != DEFAULT_BACKBONE:
                        ov.append(f"{entry['backbone_key']}.model_name={backbone}")
                    ov += [_fill(o, **values) for o in _scoped(overrides, method, known)]
                    ov.append(f"paths.output_dir={folder}")
                    exp = _fill(entry["experiment"], **values)
                    runs.append(BenchmarkRun(method, dataset, backbone, seed, exp, ov, folder))
    return runs


def _execute(run: BenchmarkRun) -> None:
    """Compose ``eval.yaml`` with the run's experiment and overrides and evaluate it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ramlico.cli import evaluate

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG.parents[1])):
        cfg = compose(
            config_name="eval", overrides=[f"experiment={run.experiment}", *run.overrides]
        )
    run.folder.mkdir(parents=True, exist_ok=True)
    (run.folder / "benchmark_run.json").write_text(json.dumps({
        "method": run.method, "dataset": run.dataset, "backbone": run.backbone,
        "seed": run.seed, "experiment": run.experiment, "overrides": run.overrides,
    }, indent=1))  # fmt: skip
    evaluate(cfg)
    if not run.done:
        raise RuntimeError(
            f"{run.method} on {run.dataset} wrote no {METRICS_FILE} in {run.folder}; does the "
            "method write predictions (callbacks.zero_shot_writer.predictions=true)?"
        )


def _row_name(method: str, backbone: str, backbones: Sequence[str]) -> str:
    return method if len(backbones) == 1 else f"{method} ({backbone})"


def results_table(
    runs: Sequence[BenchmarkRun], metric: str = "top1"
) -> tuple[list[str], list[list[str]], dict[str, Any]]:
    """``(header, rows, record)`` of the finished runs: one row per method (x backbone), one
    column per dataset plus ``mean`` (of the row's datasets, when all are present)."""
    datasets = list(dict.fromkeys(r.dataset for r in runs))
    backbones = list(dict.fromkeys(r.backbone for r in runs))
    cells: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        if run.done:
            value = json.loads((run.folder / METRICS_FILE).read_text())[metric]
            cells.setdefault(
                (_row_name(run.method, run.backbone, backbones), run.dataset), []
            ).append(float(value))
    header = ["method", *datasets, "mean"]
    rows: list[list[str]] = []
    record: dict[str, Any] = {"metric": metric, "datasets": datasets, "rows": {}}
    for name in dict.fromkeys(_row_name(r.method, r.backbone, backbones) for r in runs):
        row: list[str] = [name]
        means: list[float] = []
        entry: dict[str, Any] = {}
        for ds in datasets:
            values = cells.get((name, ds))
            if not values:
                row.append("-")
                continue
            mean = statistics.fmean(values)
            std = statistics.pstdev(values) if len(values) > 1 else None
            means.append(mean)
            entry[ds] = {"mean": mean, "std": std, "runs": len(values)}
            row.append(f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}")
        full = len(means) == len(datasets)
        row.append(f"{statistics.fmean(means):.2f}" if full else "-")
        entry["mean"] = statistics.fmean(means) if full else None
        rows.append(row)
        record["rows"][name] = entry
    return header, rows, record


def write_tables(out: str | Path, header: list[str], rows: list[list[str]], record: dict) -> str:
    """Write ``table.md``, ``table.csv``, ``table.json`` into ``out``; return the markdown."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    markdown = "\n".join(lines) + "\n"
    (out / "table.md").write_text(markdown, encoding="utf-8")
    with (out / "table.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])
    (out / "table.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    return markdown


def run_benchmark(runs: Sequence[BenchmarkRun], rerun: bool = False, keep_going: bool = False
                  ) -> dict[str, list[BenchmarkRun]]:  # fmt: skip
    """Execute the runs not done yet (all with ``rerun``); returns them as ran/skipped/failed.

    Raises:
        Exception: the first failing run's error, unless ``keep_going``.
    """
    status: dict[str, list[BenchmarkRun]] = {"ran": [], "skipped": [], "failed": []}
    for i, run in enumerate(runs, 1):
        seed = "" if run.seed is None else f" seed {run.seed}"
        label = f"[{i}/{len(runs)}] {run.method}{seed} on {run.dataset} ({run.backbone})"
        if run.done and not rerun:
            log.info("%s: done already (%s), skipped", label, run.folder / METRICS_FILE)
            status["skipped"].append(run)
            continue
        log.info("%s -> %s", label, run.folder)
        try:
            _execute(run)
        except Exception:
            if not keep_going:
                raise
            log.exception("%s failed; continuing (--keep-going)", label)
            status["failed"].append(run)
            continue
        status["ran"].append(run)
    return status


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line (see the module docstring); returns the status and the table record."""
    parser = argparse.ArgumentParser(
        prog="python -m ramlico.zeroshot.benchmark",
        description="Evaluate zero-shot methods on several datasets and write one results table.",
    )
    parser.add_argument("--methods", type=_csv, help="comma list (default: all of the config)")
    parser.add_argument("--datasets", type=_csv, help="comma list (default: the config's)")
    parser.add_argument("--backbones", type=_csv, help="open_clip names (default: the config's)")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in _csv(s)],
                        help="seeds of the seeded methods (default: the config's)")  # fmt: skip
    parser.add_argument("--out", default="results/zero_shot", help="benchmark folder")
    parser.add_argument("--config", default=str(CONFIG), help="benchmark YAML")
    parser.add_argument("--rerun", action="store_true", help="repeat runs that are done")
    parser.add_argument("--keep-going", action="store_true", help="continue after a failed run")
    help_ov = "evaluate.py overrides for every run; <method>:key=value for one method"
    parser.add_argument("overrides", nargs="*", help=help_ov)
    args = parser.parse_args(argv)
    spec = OmegaConf.load(args.config)
    assert isinstance(spec, DictConfig)  # checked again by benchmark_runs
    runs = benchmark_runs(
        args.methods or list(spec.methods), args.datasets or list(spec.datasets),
        args.backbones or list(spec.get("backbones", [DEFAULT_BACKBONE])), args.out,
        args.overrides, args.config, args.seeds,
    )  # fmt: skip
    status = run_benchmark(runs, rerun=args.rerun, keep_going=args.keep_going)
    header, rows, record = results_table(runs, spec.get("metric", "top1"))
    markdown = write_tables(args.out, header, rows, record)
    sys.stdout.write(markdown)
    log.info("ran %d, skipped %d (done), failed %d; tables in %s", len(status["ran"]),
             len(status["skipped"]), len(status["failed"]), args.out)  # fmt: skip
    return {"status": status, "record": record}


if __name__ == "__main__":  # pragma: no cover - thin CLI
    main()
