"""Tests of the streaming torchmetrics classes in ramlico.metrics.multilabel.

Streaming and DDP results are compared with the one-shot functional values. Counting metrics
(P/R/F1@k, top-k) are integer states, so they must match to the last bit of the metric's dtype;
mAP concatenates the same rows, so it must match exactly as well (set_dtype(float64) throughout).
"""

import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ramlico.metrics import (
    MeanAveragePrecision,
    MetricWarning,
    MultiLabelMetrics,
    MultiLabelTopK,
    TopKAccuracy,
    functional,
)

pytestmark = pytest.mark.filterwarnings("error::ramlico.metrics.functional.MetricWarning")

F64 = torch.float64


def make_data(seed: int, n: int = 90, c: int = 9, num_classes: int = 6):
    """Multi-label scores with ties (2 decimals), an image and a label without positives, and
    single-label scores with ties."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.round(torch.rand(n, c, generator=g, dtype=F64), decimals=2)
    targets = (torch.rand(n, c, generator=g) < 0.25).long()
    targets[3], targets[:, 4] = 0, 0
    class_scores = torch.round(torch.randn(n, num_classes, generator=g, dtype=F64), decimals=1)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    return scores, targets, class_scores, labels


def expected_multilabel(scores, targets, ks=(3, 5), empty_label_ap="zero"):
    out = {}
    for k in ks:
        p, r, f1 = functional.topk_precision_recall_f1(scores, targets, k)
        out |= {f"P@{k}": p, f"R@{k}": r, f"F1@{k}": f1}
    out["mAP"] = functional.mean_average_precision(scores, targets, empty_label_ap)
    return out


def random_splits(n: int, seed: int) -> list[int]:
    """Cut points of ``range(n)`` into uneven batches (sizes 1..n)."""
    g = torch.Generator().manual_seed(seed)
    cuts = torch.randperm(n - 1, generator=g)[: int(torch.randint(1, 8, (1,), generator=g))] + 1
    return [0, *sorted(cuts.tolist()), n]


def update_in_batches(metric, a, b, bounds):
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        metric.update(a[start:stop], b[start:stop])


def assert_dicts_equal(got, expected):
    assert list(sorted(got)) == list(sorted(expected))
    for key, value in expected.items():
        assert got[key].dtype == F64, key
        assert got[key].item() == value.item(), key


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_equals_one_shot(seed):
    scores, targets, class_scores, labels = make_data(seed)
    bounds = random_splits(scores.shape[0], seed)
    metrics = MultiLabelMetrics(ks=(3, 5), empty_label_ap="skip")
    metrics.set_dtype(F64)
    update_in_batches(metrics, scores, targets, bounds)
    assert_dicts_equal(
        metrics.compute(), expected_multilabel(scores, targets, empty_label_ap="skip")
    )
    accuracy = TopKAccuracy(ks=(1, 2, 5)).set_dtype(F64)
    update_in_batches(accuracy, class_scores, labels, bounds)
    expected = {f"top{k}": functional.topk_accuracy(class_scores, labels, k) for k in (1, 2, 5)}
    assert_dicts_equal(accuracy.compute(), expected)


def test_example_a_through_multilabel_metrics():
    # metrics.md example A: P@3 = 4/9, R@3 = 4/5, F1@3 = 0.571429; mAP 0.766667 (example E)
    scores = torch.tensor(
        [[0.8, 0.15, 0.6, 0.05, 0.3], [0.1, 0.9, 0.2, 0.7, 0.4], [0.5, 0.45, 0.35, 0.25, 0.55]]
    )
    targets = torch.tensor([[1, 0, 0, 0, 1], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0]])
    metrics = MultiLabelMetrics(ks=(1, 3), prefix="val/")
    metrics.update(scores[:1], targets[:1])
    metrics.update(scores[1:], targets[1:])
    got = {key: value.item() / 100 for key, value in metrics.compute().items()}
    expected = {"val/P@1": 0.666667, "val/R@1": 0.4, "val/F1@1": 0.5, "val/P@3": 0.444444}
    expected |= {"val/R@3": 0.8, "val/F1@3": 0.571429, "val/mAP": 0.766667}
    assert got == pytest.approx(expected, abs=1e-6)  # float32 outputs: error ~1e-8 < 1e-6
    assert all(v.dtype == torch.float32 and v.ndim == 0 for v in metrics.compute().values())


def test_default_keys_and_map_off():
    scores, targets, _, _ = make_data(0)
    metrics = MultiLabelMetrics()
    metrics.update(scores, targets)
    assert sorted(metrics.compute()) == sorted(["P@3", "R@3", "F1@3", "P@5", "R@5", "F1@5", "mAP"])
    no_map = MultiLabelMetrics(ks=(5,), map=False)
    no_map.update(scores, targets)
    assert sorted(no_map.compute()) == ["F1@5", "P@5", "R@5"]
    assert no_map.compute()["P@5"] == metrics.compute()["P@5"]


def test_reset_forgets_previous_data():
    scores, targets, class_scores, labels = make_data(0)
    topk, ap, acc = MultiLabelTopK(3).set_dtype(F64), MeanAveragePrecision(), TopKAccuracy((1,))
    for metric, a, b in (
        (topk, scores, targets),
        (ap, scores, targets),
        (acc, class_scores, labels),
    ):
        metric.update(a[:40], b[:40])
        metric.compute()
        metric.reset()
        metric.update(a[40:], b[40:])
    p, r, f1 = functional.topk_precision_recall_f1(scores[40:], targets[40:], 3)
    assert [topk.compute()[key].item() for key in ("P@3", "R@3", "F1@3")] == [p, r, f1]
    map_rest = functional.mean_average_precision(scores[40:], targets[40:]).float()
    assert ap.compute().item() == map_rest.item()
    assert (
        acc.compute()["top1"].item()
        == functional.topk_accuracy(class_scores[40:].float(), labels[40:], 1).item()
    )


def test_no_positives_warns_at_compute():
    metric = MultiLabelTopK(2)
    metric.update(torch.rand(4, 3), torch.zeros(4, 3))
    with pytest.warns(MetricWarning, match="no positive label"):
        result = metric.compute()
    assert [result[key].item() for key in ("P@2", "R@2", "F1@2")] == [0.0, 0.0, 0.0]


def test_errors():
    with pytest.raises(ValueError, match="k=4 exceeds the number of labels C=3"):
        MultiLabelTopK(4).update(torch.rand(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="k=5 exceeds the number of classes C=3"):
        TopKAccuracy(ks=(1, 5)).update(torch.rand(2, 3), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="distinct positive ints"):
        TopKAccuracy(ks=(1, 1))
    with pytest.raises(ValueError, match="k must be a positive int, got 0"):
        MultiLabelMetrics(ks=(0, 3))
    with pytest.raises(ValueError, match="empty_label_ap must be one of"):
        MultiLabelMetrics(empty_label_ap="nan")
    metric = MeanAveragePrecision()
    metric.update(torch.rand(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="scores has 4 labels but earlier batches had 3"):
        metric.update(torch.rand(2, 4), torch.ones(2, 4))


# ---- DDP: 2 CPU processes, gloo ----------------------------------------------------------------
DDP_SPLIT = [0, 23, 61, 90]  # rank 0 gets rows 0:23 (one batch), rank 1 rows 23:90 (two batches)


def _ddp_worker(rank: int, world_size: int, init_method: str, out_path: str) -> None:
    torch.set_num_threads(1)  # two processes on a shared CPU
    dist.init_process_group(
        "gloo", init_method=init_method, rank=rank, world_size=world_size,
        timeout=timedelta(seconds=60),
    )  # fmt: skip
    try:
        scores, targets, class_scores, labels = make_data(7)
        metrics = MultiLabelMetrics(ks=(1, 3)).set_dtype(F64)
        skip = MeanAveragePrecision("skip").set_dtype(F64)
        accuracy = TopKAccuracy(ks=(1, 3)).set_dtype(F64)
        bounds = DDP_SPLIT[:2] if rank == 0 else DDP_SPLIT[1:]
        for metric, a, b in ((metrics, scores, targets), (skip, scores, targets)):
            update_in_batches(metric, a, b, bounds)
        update_in_batches(accuracy, class_scores, labels, bounds)
        result = metrics.compute() | {"mAP_skip": skip.compute()} | accuracy.compute()
        torch.save(result, f"{out_path}.{rank}")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="torch.distributed gloo backend not available in this torch build",
)
def test_ddp_two_processes_equal_one_process(tmp_path):
    init_method = f"tcp://127.0.0.1:{_free_port()}"
    out_path = str(tmp_path / "result")
    mp.spawn(_ddp_worker, args=(2, init_method, out_path), nprocs=2, join=True)
    scores, targets, class_scores, labels = make_data(7)
    expected = expected_multilabel(scores, targets, ks=(1, 3))
    expected["mAP_skip"] = functional.mean_average_precision(scores, targets, "skip")
    expected |= {f"top{k}": functional.topk_accuracy(class_scores, labels, k) for k in (1, 3)}
    for rank in range(2):  # every rank computes the global value
        assert_dicts_equal(torch.load(f"{out_path}.{rank}"), expected)
