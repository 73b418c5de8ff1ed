"""One command evaluates methods x datasets, skips finished runs and writes one results table."""

from __future__ import annotations

import csv
import json
import statistics

import pytest

from ramlico.zeroshot import benchmark
from ramlico.zeroshot.benchmark import benchmark_runs, main


def _args(tmp_path, *extra):
    return ["--methods", "lazsl,clip,waffle,otfusion", "--datasets", "demo", "--seeds", "0,1",
            "--out", str(tmp_path / "bench"), f"paths.data_dir={tmp_path / 'data'}",
            "data.generated.n_test_per_class=2", "logger=none", "callbacks=none",
            "+trainer.enable_progress_bar=false", "lazsl:model.num_crops=4",
            "lazsl:model.explain_images=0", "waffle:model.waffle_count=2", *extra]  # fmt: skip


def test_benchmark_runs_every_cell_then_skips_finished_runs(tmp_path, monkeypatch):
    calls = []
    execute = benchmark._execute
    monkeypatch.setattr(benchmark, "_execute", lambda run: calls.append(run) or execute(run))
    first = main(_args(tmp_path))
    assert [(r.method, r.seed) for r in calls] == [
        ("lazsl", None), ("clip", None), ("waffle", 0), ("waffle", 1), ("otfusion", None)
    ]  # fmt: skip
    out = tmp_path / "bench"
    metrics = {
        name: json.loads((out / "default" / name / "demo" / "zero_shot_metrics.json").read_text())
        for name in ("lazsl", "clip", "waffle-seed0", "waffle-seed1", "otfusion")
    }
    assert metrics["clip"]["method"] == "clip" and metrics["otfusion"]["method"] == "otfusion"
    # The table holds each run's top-1; the seeded method shows mean +- std over its seeds.
    rows = {r[0]: r[1:] for r in csv.reader((out / "table.csv").open())}
    assert rows["method"] == ["demo", "mean"]
    assert rows["lazsl"] == [f"{metrics['lazsl']['top1']:.2f}"] * 2
    waffle = [metrics["waffle-seed0"]["top1"], metrics["waffle-seed1"]["top1"]]
    assert rows["waffle"][0] == f"{statistics.fmean(waffle):.2f} ± {statistics.pstdev(waffle):.2f}"
    record = json.loads((out / "table.json").read_text())
    assert record["rows"]["otfusion"]["demo"]["mean"] == pytest.approx(metrics["otfusion"]["top1"])
    assert "| lazsl |" in (out / "table.md").read_text()
    # The same command again: every run is found done and skipped; the table is the same.
    calls.clear()
    second = main(_args(tmp_path))
    assert calls == [] and len(second["status"]["skipped"]) == 5
    assert second["record"] == first["record"]
    # --rerun repeats a run (here one method only)
    main(["--methods", "clip", "--datasets", "demo", "--out", str(out), "--rerun",
          *_args(tmp_path)[8:]])  # fmt: skip
    assert [r.method for r in calls] == ["clip"]


def test_runs_compose_overrides_per_backbone_and_method(tmp_path):
    runs = benchmark_runs(["lazsl", "otfusion"], ["cub"], ["ViT-B-32", "ViT-L-14"], tmp_path,
                          ["paths.data_dir=/d", "otfusion:model.rounds=3"])  # fmt: skip
    assert [(r.backbone, r.method, r.experiment) for r in runs] == [
        ("ViT-B-32", "lazsl", "lazsl_cub"), ("ViT-B-32", "otfusion", "otfusion_cub"),
        ("ViT-L-14", "lazsl", "lazsl_cub"), ("ViT-L-14", "otfusion", "otfusion_cub"),
    ]  # fmt: skip
    assert runs[0].overrides == [
        "model.method=lazsl", "model.backbone.model_name=ViT-B-32", "paths.data_dir=/d",
        f"paths.output_dir={tmp_path}/ViT-B-32/lazsl/cub",
    ]  # fmt: skip
    assert runs[1].overrides[:3] == ["model.clip.model_name=ViT-B-32", "paths.data_dir=/d",
                                     "model.rounds=3"]  # fmt: skip
    with pytest.raises(ValueError, match="unknown methods \\['lazls'\\]"):
        benchmark_runs(["lazls"], ["cub"], ["default"], tmp_path)
