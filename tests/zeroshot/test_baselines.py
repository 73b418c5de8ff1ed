"""WaffleCLIP descriptors, CuPL sentence files, prediction logs and explanation panels."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from PIL import Image

from ramlico.zeroshot.baselines import (
    cupl_sentences,
    load_word_list,
    waffle_descriptors,
    waffle_texts,
    word_list_from_descriptors,
)
from ramlico.zeroshot.panel import PANEL_SIZE, explanation_panel, to_uint8_image
from ramlico.zeroshot.predictions import PredictionLog, results_table

NAMES = ["Black-footed Albatross", "Laysan Albatross", "Sooty Albatross", "Bobolink"]


def test_waffle_statistics_follow_the_class_names():
    # words per name: 2, 2, 2, 1 -> n_w = round(7/4) = 2; word lengths 12,9,6,9,5,9,8 -> mean
    # 58/7 = 8.29 -> L_w = 8; spaces 1,1,1,0 -> n_s = round(0.75) + 1 = 2 groups; longest words
    # 12, 9, 9, 8 -> ceil(38/4) = 10 characters, a multiple of 2 -> 5 per group.
    words = ["abcdefghijkl", "mnopqrstuvwx", "yz"]
    descs = waffle_descriptors(NAMES, words, "xyz", count=3, seed=7)
    assert len(descs) == 6
    for word_desc, char_desc in zip(descs[::2], descs[1::2], strict=True):
        parts = word_desc.split(" ")
        assert len(parts) == 2 and all(p in {"abcdefgh", "mnopqrst", "yz"} for p in parts)
        groups = char_desc.split(", ")
        assert [len(g) for g in groups] == [5, 5] and set("".join(groups)) <= set("xyz")
    assert waffle_descriptors(NAMES, words, "xyz", count=3, seed=7) == descs
    assert waffle_descriptors(NAMES, words, "xyz", count=3, seed=8) != descs
    with pytest.raises(ValueError, match="count >= 1"):
        waffle_descriptors(NAMES, words, "xyz", count=0)


def test_waffle_texts_share_descriptors_across_classes():
    descriptors = {"cat": ["a small animal", "whiskers"], "dog": ["barks loudly"]}
    texts = waffle_texts(["cat", "dog"], descriptors, count=15, seed=0)
    assert [len(t) for t in texts] == [30, 30]
    assert all(t.startswith("A photo of a cat, which") and t.endswith(".") for t in texts[0])
    # The same random descriptor follows each class name.
    assert [t.removeprefix("A photo of a cat") for t in texts[0]] == [
        t.removeprefix("A photo of a dog") for t in texts[1]
    ]
    assert word_list_from_descriptors(descriptors) == ["animal", "barks", "loudly", "small",
                                                       "whiskers"]  # fmt: skip


def test_word_list_and_cupl_file_errors(tmp_path):
    (tmp_path / "w.txt").write_text("alpha\n\nbeta\n")
    assert load_word_list(tmp_path / "w.txt") == ["alpha", "beta"]
    with pytest.raises(FileNotFoundError, match="one word per line"):
        load_word_list(tmp_path / "none.txt")
    path = tmp_path / "cupl.json"
    path.write_text(json.dumps({"cat": ["A cat is a pet.", "Cats purr."], "dog": ["A dog."]}))
    assert cupl_sentences(path, ["dog", "cat"]) == [["A dog."], ["A cat is a pet.", "Cats purr."]]
    with pytest.raises(
        ValueError, match=r"no key: \['bird'\]; keys no class matched \(1\): \['dog'\]"
    ):
        cupl_sentences(path, ["cat", "bird"])


def test_prediction_log_csv_and_metrics(tmp_path):
    log = PredictionLog(k=2)
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.1, 0.4], [0.2, 0.3, 0.5]])
    log.add(torch.tensor([0, 1]), scores[:2], torch.tensor([1, 2]))
    log.add(torch.tensor([2]), scores[2:], torch.tensor([0]))
    # top-1: 1 (hit), 0 (miss), 2 (miss) -> 33.33%; top-2: {1,2} hit, {0,2} hit, {2,1} miss.
    assert log.metrics() == pytest.approx({"top1": 100 / 3, "top2": 200 / 3})
    out = log.write(tmp_path, ["a", "b", "c"], paths=["x.jpg", "y.jpg", "z.jpg"],
                    info={"method": "clip", "dataset": "toy"})  # fmt: skip
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == ["x.jpg", "y.jpg", "z.jpg"]
    assert [(r["true_class"], r["top1_class"], r["top2_class"], r["correct"]) for r in rows] == [
        ("b", "b", "c", "1"), ("c", "a", "c", "0"), ("a", "c", "b", "0")
    ]  # fmt: skip
    assert float(rows[1]["top2_score"]) == pytest.approx(0.4)
    record = json.loads((tmp_path / "zero_shot_metrics.json").read_text())
    assert record["images"] == 3 and record["method"] == "clip"
    table = results_table([tmp_path, tmp_path / "missing"])
    assert "toy" in table.splitlines()[0] and "33.33" in table.splitlines()[1]


@pytest.mark.parametrize(
    ("index", "scores", "labels"),
    [
        # scores and labels agree, the index does not: a chained `a != b != c` let this through
        (torch.arange(3), torch.rand(2, 4), torch.tensor([0, 1])),
        (torch.arange(2), torch.rand(2, 4), torch.tensor([0, 1, 2])),
        (torch.arange(2), torch.rand(3, 4), torch.tensor([0, 1])),  # a == c != b
        (torch.arange(2), torch.rand(2, 4), torch.tensor([[0], [1]])),
        (torch.arange(2), torch.rand(2), torch.tensor([0, 1])),
    ],
)
def test_prediction_log_rejects_mismatched_batches(index, scores, labels):
    log = PredictionLog(k=2)
    with pytest.raises(ValueError, match=r"scores \(B, K\), labels \(B,\), index \(B,\) expected"):
        log.add(index, scores, labels)
    assert len(log) == 0


def test_explanation_panel_draws_boxes_and_bars():
    image = to_uint8_image(torch.zeros(3, 32, 48), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert image.size == (48, 32) and image.getpixel((0, 0)) == (128, 128, 128)
    panel = explanation_panel(image, [(0, 0, 24, 32)], ["x, which is a", "x, which has b"],
                              [0.04, 0.01], "#0 predicted: x")  # fmt: skip
    assert panel.size == PANEL_SIZE and panel.mode == "RGB"
    # The first box's outline (red, rank 1) runs down the image's left edge.
    assert panel.getpixel((0, 32 + 100)) == (230, 25, 75)
    # Bars scale with the contribution: 0.04 fills 4x the length of 0.01.
    bars = [
        sum(panel.getpixel((x, y)) == (70, 110, 200) for x in range(PANEL_SIZE[0]))
        for y in (40 + 22, 40 + (PANEL_SIZE[1] - 48) / 2 + 22)
    ]
    assert bars[0] == pytest.approx(4 * bars[1], rel=0.02) and bars[1] > 50
    assert isinstance(panel, Image.Image)
