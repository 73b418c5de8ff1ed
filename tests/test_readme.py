"""The README as a user runs it: the custom-data commands as written, and its demo numbers."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import doc_numbers  # noqa: E402

README = ROOT / "README.md"
USER_ROOT = "/data/mine"  # the folder the README's commands name
LABELS = ("bus", "car", "cat", "dog", "sofa")  # the README's labels


def readme_block(marker: str) -> list[str]:
    """The commands of the bash fence after ``marker`` (continuations joined, comments dropped)."""
    text = README.read_text()
    start = text.index(f"<!-- readme-test: {marker} -->")
    body = re.search(r"```bash\n(.*?)```", text[start:], re.S).group(1)
    body = body.replace("\\\n", " ")
    return [" ".join(shlex.split(line, comments=True)) for line in body.splitlines()
            if shlex.split(line, comments=True)]  # fmt: skip


def _write_user_data(root: Path, seed: int = 0) -> None:
    """The README's layout: images under imgs/, train.csv and test.csv with '|'-separated labels."""
    rng = random.Random(seed)
    (root / "imgs").mkdir(parents=True)
    for split, n in (("train", 30), ("test", 12)):
        rows = ["image,labels"]
        for i in range(n):
            name = f"imgs/{split}_{i:03d}.jpg"
            Image.new("RGB", (40, 30), tuple(rng.randrange(256) for _ in range(3))).save(
                root / name
            )
            labels = sorted({LABELS[i % len(LABELS)], rng.choice(LABELS)})
            rows.append(f"{name},{'|'.join(labels)}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")


def _offline(args: list[str], run_dir: Path) -> list[str]:
    """The only changes to a README command: no downloads (tiny or random CLIP), 1 epoch, CPU."""
    if args[:2] == ["python", "train.py"]:
        if any(a.startswith("model/backbone=") for a in args):
            # another ViT-B backbone with random weights: a few batches prove that it fits
            extra = ["model.backbone.pretrained=null", "+trainer.limit_train_batches=1",
                     "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1"]  # fmt: skip
        else:
            extra = ["model/backbone=clip_tiny", "data.image_size=64"]
        args = [*args, *extra, "trainer.max_epochs=1", "data.num_workers=0", "logger=none"]
    if args[:2] in (["python", "train.py"], ["python", "evaluate.py"]):
        args = [*args, f"hydra.run.dir={run_dir}"]
    return [sys.executable if a == "python" else a for a in args]


def test_the_custom_data_commands_run_as_written(tmp_path):
    commands = readme_block("custom-data")
    assert len(commands) >= 4 and all(USER_ROOT in c or "<run>" in c for c in commands)
    data = tmp_path / "mine"
    _write_user_data(data)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs, results, last_train = [], [], None
    for i, command in enumerate(commands):
        command = command.replace(USER_ROOT, str(data))
        if "<run>" in command:
            command = command.replace("<run>", str(last_train))
        run_dir = tmp_path / f"run{i}"
        done = subprocess.run(_offline(shlex.split(command), run_dir), cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=900)  # fmt: skip
        assert done.returncode == 0, f"{command}\n{(done.stdout + done.stderr)[-4000:]}"
        runs.append(command)
        metrics_file = run_dir / "metrics.json"
        results.append(json.loads(metrics_file.read_text()) if metrics_file.is_file() else None)
        if "train.py" in command:
            last_train = run_dir
    by_kind = dict(zip(runs, results, strict=True))
    check = next(r for c, r in by_kind.items() if "ramlico.data.check" in c)
    assert check is None  # the check writes nothing; it exited 0 ("ok: no problems found")
    zero_shot = next(r for c, r in by_kind.items() if "data.unseen=" in c)
    assert {"test/zsl/mAP", "test/gzsl/mAP", "val/seen/mAP"} <= set(zero_shot["metrics"])
    assert zero_shot["optimized_metric"] == "val/seen/mAP"
    plain = [c for c in by_kind if "train.py" in c and "data.unseen=" not in c]
    closed = [by_kind[c] for c in plain if "model/backbone" not in c]
    assert closed and "test/seen/mAP" in closed[0]["metrics"]
    assert not any(k.startswith("test/zsl") for k in closed[0]["metrics"])
    evaluated = next(r for c, r in by_kind.items() if "evaluate.py" in c)
    assert evaluated["metrics"]["test/seen/mAP"] == pytest.approx(
        closed[0]["metrics"]["test/seen/mAP"], abs=1e-4
    )  # evaluate.py with only ckpt_path= restored the closed-set data and preprocessing
    other = next(r for c, r in by_kind.items() if "model/backbone" in c)
    assert "test/seen/mAP" in other["metrics"]


# ------------------------------------------------------------------ the numbers checker
FAKE_TASK = """
import json, sys
from pathlib import Path
args = dict(a.split("=", 1) for a in sys.argv[1:])
out = Path(args["hydra.run.dir"]); out.mkdir(parents=True)
value = float(args.get("value", 1.0))
if "ckpt" in args:
    value += json.loads((Path(args["ckpt"]) / "metrics.json").read_text())["metrics"]["m/a"]
(out / "metrics.json").write_text(json.dumps({"metrics": {"m/a": value, "m/b": value * 10}}))
"""


def _doc(tmp_path: Path, shown: tuple[str, str, str]) -> Path:
    (tmp_path / "task.py").write_text(FAKE_TASK)
    doc = tmp_path / "doc.md"
    doc.write_text(f"""# demo

```bash
python {tmp_path}/task.py value=1.25
python {tmp_path}/task.py ckpt=<run>
```

<!-- numbers
python {tmp_path}/task.py value=1.25 => m/a m/b
python {tmp_path}/task.py ckpt=<run> => m/a
-->
| run | a | b |
|---|---|---|
| first | {shown[0]} | {shown[1]} |
| second (`lr=0.5`) | {shown[2]} | - |
<!-- /numbers -->
""")
    return doc


def test_numbers_blocks_are_parsed_run_compared_and_updated(tmp_path, monkeypatch):
    monkeypatch.setattr(doc_numbers, "ROOT", tmp_path)
    doc = _doc(tmp_path, ("1.2", "12.50", "2.25"))  # 1.25 -> "1.2" at one decimal
    (block,) = doc_numbers.parse(doc)
    assert [s.keys for s in block.steps] == [["m/a", "m/b"], ["m/a"]]
    assert [n for *_, n in block.numbers] == ["1.2", "12.50", "2.25"]  # `lr=0.5` is code: skipped
    values = doc_numbers.run_block(block, tmp_path / "w", log=lambda *_: None)
    assert values == [1.25, 12.5, 2.25]  # the second run adds the first run's m/a
    assert doc_numbers.compare(block, values) == []
    stale = _doc(tmp_path, ("1.4", "12.50", "9.99"))
    (block,) = doc_numbers.parse(stale)
    problems = doc_numbers.compare(block, values)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "m/a shows 1.4, a fresh run gives 1.2", "m/a shows 9.99, a fresh run gives 2.25"
    ]  # fmt: skip
    doc_numbers.update(stale, [block], {0: values})
    assert "| first | 1.2 | 12.50 |" in stale.read_text()
    assert "| second (`lr=0.5`) | 2.25 | - |" in stale.read_text()


def test_a_block_must_show_its_commands_and_match_its_keys(tmp_path):
    doc = tmp_path / "bad.md"
    doc.write_text("<!-- numbers\npython train.py => a b\n-->\nvalue 1.5\n<!-- /numbers -->\n")
    with pytest.raises(ValueError, match=r"bad.md:1: 1 numbers in the block but 2 keys"):
        doc_numbers.parse(doc)
    doc.write_text("<!-- numbers\npython train.py => a\n-->\nvalue 1.5\n<!-- /numbers -->\n")
    with pytest.raises(ValueError, match="the command 'python train.py' is not shown"):
        doc_numbers.parse(doc)


def test_every_doc_parses():
    files = [README, *sorted((ROOT / "docs").glob("*.md"))]
    blocks = {f.name: doc_numbers.parse(f) for f in files}
    assert len(blocks["README.md"]) >= 3  # the RAM demo table, zero-shot CLIP, the LICO table


@pytest.mark.slow
@pytest.mark.parametrize("index", range(3))
def test_readme_demo_numbers_match_a_fresh_run(index, tmp_path):
    """`python tools/doc_numbers.py README.md`: every marked README block against a fresh run."""
    block = doc_numbers.parse(README)[index]
    values = doc_numbers.run_block(block, tmp_path, log=lambda *_: None)
    assert doc_numbers.compare(block, values) == []


# ------------------------------------------------------------------ self-contained docs
OUTSIDE = re.compile(
    r"spec/|\.\./shared|/work/shared|\bspec [a-z_]+\.md|\bspec \d|\(spec |spec \[D\]"
    r"|\b(?:ram|lico|lazsl|otfusion|sinkhorn|metrics)\.md (?:section|§|\d)"
)


def test_docs_and_code_cite_nothing_outside_the_repository():
    files = [README, *(ROOT / "docs").glob("*.md")]
    for folder in ("ramlico", "tests", "benchmarks", "tools"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".yaml", ".md")]
    cited = []
    for path in files:
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            if OUTSIDE.search(line) and path.name != "test_readme.py":
                cited.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:80]}")
    assert cited == []


def test_every_relative_link_of_the_docs_exists():
    missing = []
    for path in [README, *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
            if not target.startswith(("http://", "https://", "mailto:")):
                if not (path.parent / target).exists():
                    missing.append(f"{path.name}: {target}")
    assert missing == []
