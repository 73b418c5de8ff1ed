"""Region evidence over a loader: hand-made heatmaps and objects with known pointing and mass."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ramlico.cli.report import regions_table
from ramlico.data.generated import OBJECTS_FILE
from ramlico.explain.region_evaluation import evaluate_regions
from ramlico.explain.regions import box_heatmaps
from ramlico.metrics.regions import object_masks

NAMES = ["red circle", "blue star"]
# two 32 px images; 4 x 4 grid of 8 px cells with centres at 4, 12, 20, 28
OBJECTS = [
    [{"label": "red circle", "center": [8.0, 8.0], "radius": 6.0},  # cells (0,0),(0,1),(1,0),(1,1)
     {"label": "purple ring", "center": [24.0, 24.0], "radius": 6.0}],  # a distractor
    [{"label": "blue star", "center": [24.0, 8.0], "radius": 6.0},  # cells (0,2),(0,3),(1,2),(1,3)
     {"label": "red circle", "center": [8.0, 24.0], "radius": 6.0}],  # cells (2,0)...(3,1)
]  # fmt: skip


class TreeDataset(Dataset):
    """An ImageFolder-like tree with objects.jsonl at its root (the generated layout)."""

    def __init__(self, root):
        self.samples = []
        rows = []
        for i, objs in enumerate(OBJECTS):
            path = root / "scenes" / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32)).save(path)
            self.samples.append((str(path), 0))
            rows.append(json.dumps({"image": f"scenes/{i}.png", "objects": objs}))
        (root / OBJECTS_FILE).write_text("\n".join(rows) + "\n")

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return torch.full((3, 4, 4), float(i)), i  # the image index travels as the "image"


def oracle(inputs, names, sizes):
    """All evidence on the label's object cells (from the geometry itself)."""
    idx = [int(x[0, 0, 0]) for x in inputs]
    return object_masks([OBJECTS[i] for i in idx], names, (4, 4), sizes).float()


def wrong(inputs, names, sizes):
    """All evidence on the bottom-right cell, which no labelled object covers."""
    heat = torch.zeros(len(inputs), len(names), 4, 4)
    heat[..., 3, 3] = 1.0
    return heat


def test_hand_made_sources_score_their_known_pointing_and_mass(tmp_path):
    loader = DataLoader(TreeDataset(tmp_path), batch_size=1)  # two batches: streaming
    out = evaluate_regions(loader, NAMES, {"oracle": oracle, "wrong": wrong,
                                           "none": lambda x, n, s: None})  # fmt: skip
    # 3 present pairs (red circle in both images, blue star in image 1), 4 of 16 cells each
    uniform = out.pop("uniform")
    assert out == {
        "oracle": {"pointing": 100.0, "mass": 100.0},
        "wrong": {"pointing": 0.0, "mass": 0.0},
    }  # a source without evidence ("none") is left out
    # the uniform map scores the discs' area share, pi 6^2 / 32^2 = 11.0 % (on its 1 px grid)
    area = 100 * math.pi * 36 / 32**2
    assert uniform["pointing"] == uniform["mass"] == pytest.approx(area, abs=0.5)
    # half the mass on the object, half on the wrong cell; the arg-max ties 4 inside : 1 outside
    half = evaluate_regions(loader, NAMES, {"mix": lambda x, n, s: oracle(x, n, s) / 4
                                            + wrong(x, n, s)})  # fmt: skip
    assert half["mix"] == {"pointing": 0.0, "mass": 50.0}  # 1.0 at (3,3) beats 0.25 inside
    tie = evaluate_regions(loader, NAMES, {"tie": lambda x, n, s: oracle(x, n, s)
                                           + wrong(x, n, s)})  # fmt: skip
    assert tie["tie"] == {"pointing": 80.0, "mass": 80.0}  # 4 of 5 tied cells; 4 of 5 units


def test_repeated_names_each_get_the_label_mask_and_none_is_not_scored(tmp_path):
    loader = DataLoader(TreeDataset(tmp_path), batch_size=2)

    def per_descriptor(inputs, names, sizes):  # two maps per label, the second a padding slot
        good = oracle(inputs, names, sizes)
        heat = torch.stack([good, wrong(inputs, names, sizes)], dim=2).flatten(1, 2)
        return heat, [n if j == 0 else None for n in names for j in range(2)]

    assert evaluate_regions(loader, NAMES, {"d": per_descriptor})["d"] == {
        "pointing": 100.0, "mass": 100.0,
    }  # fmt: skip
    masks = object_masks(OBJECTS, ["red circle", "red circle", None], (4, 4), 32)
    assert torch.equal(masks[:, 0], masks[:, 1]) and masks[:, 0].sum() == 8
    assert not masks[:, 2].any()


def test_no_geometry_scores_nothing(tmp_path):
    ds = TreeDataset(tmp_path)
    (tmp_path / OBJECTS_FILE).unlink()
    assert evaluate_regions(DataLoader(ds), NAMES, {"oracle": oracle}) == {}


def test_box_heatmaps_average_the_covering_crops_and_pool_to_the_grid():
    # an 8 x 4 image (W x H); crop 0 covers the left half (weight 2), crop 1 everything (weight 1)
    boxes = torch.tensor([[[0, 0, 4, 4], [0, 0, 8, 4]]])
    weights = torch.tensor([[[2.0], [1.0]]])  # (B=1, N=2, C=1)
    maps = box_heatmaps(weights, boxes, [(8, 4)], grid=(1, 2))
    # left pixels: (2 + 1) / 2 crops = 1.5; right pixels: 1 / 1 crop = 1.0
    torch.testing.assert_close(maps, torch.tensor([[[[1.5, 1.0]]]]))
    with pytest.raises(ValueError, match="must agree"):
        box_heatmaps(weights, boxes[:, :1], [(8, 4)])


def test_regions_table_lays_out_sources_by_split():
    table = regions_table({"regions/zsl/ram_plan/pointing": 70.0, "regions/zsl/ram_plan/mass": 60.0,
                           "regions/gzsl/uniform/pointing": 10.0, "test/zsl/mAP": 1.0}, "t")
    assert [c.header for c in table.columns] == ["evidence", "ZSL pointing", "ZSL mass",
                                                 "GZSL pointing"]  # fmt: skip
    assert list(table.columns[1].cells) == ["70.0", "-"]
    assert regions_table({"test/zsl/mAP": 1.0}, "t") is None


def test_label_files_other_than_json_lines_have_no_geometry(tmp_path):
    from types import SimpleNamespace

    from ramlico.data.regions import object_geometry

    csv = tmp_path / "train.csv"
    csv.write_text("image,labels\na.png,cat\n")
    record = SimpleNamespace(source=f"{csv}:2", image=str(tmp_path / "a.png"))
    ds = SimpleNamespace(records=[record])
    assert object_geometry(ds) is None


@pytest.mark.parametrize("regions", [True, False])
def test_evaluate_writes_region_metrics_where_the_data_has_objects(tmp_path, regions):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
    from helpers import compose_cfg, shrink
    from omegaconf import open_dict

    from ramlico.cli import evaluate

    cfg = shrink(compose_cfg("eval", tmp_path, ["experiment=clip_zeroshot_demo",
                                                f"eval.regions={regions}"]), tmp_path / "gen")
    with open_dict(cfg):
        cfg.logger = None
    metrics, _ = evaluate(cfg)
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())["metrics"]
    keys = {k for k in saved if k.startswith("regions/")}
    if not regions:
        assert not keys
        return
    assert keys == {f"regions/{s}/{src}/{m}" for s in ("zsl", "gzsl")
                    for src in ("clip_saa", "clip_patch", "uniform") for m in ("pointing", "mass")}
    for key in keys:
        assert saved[key] == metrics[key] and 0.0 <= saved[key] <= 100.0
    # the uniform map scores the objects' area share (radius 28-42 % of a 32 px quadrant half)
    assert 3.0 < saved["regions/gzsl/uniform/pointing"] < 20.0


def test_lazsl_reports_its_crops_per_class_and_per_descriptor(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
    from helpers import compose_cfg
    from omegaconf import open_dict

    from ramlico.cli import evaluate

    cfg = compose_cfg("eval", tmp_path, ["experiment=lazsl_demo", "model.num_crops=4",
                                         "model.explain_images=0"])  # fmt: skip
    with open_dict(cfg):
        cfg.data.root = str(tmp_path / "gen_cls")
        cfg.data.generated.n_test_per_class = 2
        cfg.logger = None
        cfg.trainer.enable_progress_bar = False
        cfg.callbacks.pop("rich_progress_bar", None)
    metrics, _ = evaluate(cfg)
    sources = {k.split("/")[2] for k in metrics if k.startswith("regions/test/")}
    assert sources == {"lazsl_crops", "lazsl_descriptors", "clip_patch", "uniform"}
    assert all(0.0 <= metrics[f"regions/test/{s}/mass"] <= 100.0 for s in sources)
