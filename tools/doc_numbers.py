"""Check (or regenerate) the numbers in README.md and docs/*.md against fresh runs.

A block of numbers in a Markdown file is marked with the commands that produce it::

    <!-- numbers
    python train.py experiment=lico_demo => test/test/top1
    python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt => test/test/top5
    tolerance: 0.0
    -->
    | model | top-1 | top-5 |
    |---|---|---|
    | LICO | 1.0 | 2.00 |
    <!-- /numbers -->

* Each command line is ``<command> => <metric key> ...``. The command is a Hydra task of this
  repository (``python train.py`` / ``python evaluate.py``); it is run from the repository root with
  ``hydra.run.dir=<fresh folder>`` added, and the keys are read from the ``metrics.json`` it writes
  there. ``<run>`` stands for the folder of the block's previous command (e.g. the checkpoint of the
  run just trained).
* The decimal numbers of the block's visible text (outside ``code spans`` and fences with a
  language such as ``bash``; a plain fence of printed output is read), in reading order, are the
  values of the keys of all its commands, in order. Each must equal the fresh value rounded
  to the decimals shown, within ``tolerance`` (optional, default 0).
* Commands run with one CPU thread (``OMP_NUM_THREADS=1``): a seeded training run is
  bit-reproducible for a given thread count on a given CPU model. Another thread count or CPU
  (e.g. AVX2 against AVX-512 kernels) rounds differently, and training amplifies that: a block
  of trained metrics states the ``tolerance`` seen across CPUs (docs/development.md).
* Every command must also be visible: written out (verbatim, up to whitespace and ``\\`` line
  breaks) in the block or in the 25 lines above its marker, so the reader sees how to reproduce it.

Usage::

    python tools/doc_numbers.py                 # check README.md and docs/*.md (1 on a mismatch)
    python tools/doc_numbers.py --update        # rewrite the numbers from fresh runs
    python tools/doc_numbers.py --list          # show the blocks and their commands, run nothing
    python tools/doc_numbers.py README.md --block 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPEN = re.compile(r"<!--\s*numbers\s*\n(.*?)-->\s*\n", re.S)
CLOSE = "<!-- /numbers -->"
NUMBER = re.compile(r"(?<![\w.@/^-])\d+\.\d+(?!\w|\.\d)")
# code the numbers are not read from: fences with a language (```bash, ```python) and `spans`;
# plain ``` fences (a command's printed output) are read
CODE = re.compile(r"```[A-Za-z]\S*\n.*?```|`[^`\n]*`", re.S)
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
VISIBLE_LINES = 25


@dataclass
class Step:
    """One command of a block and the metric keys it provides."""

    command: str
    keys: list[str]


@dataclass
class Block:
    """A marked block: its commands, where its numbers are, and the text above it."""

    path: Path
    line: int
    steps: list[Step]
    tolerance: float
    body_start: int  # offsets of the numbered text in the file
    body_end: int
    numbers: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, text)

    @property
    def keys(self) -> list[str]:
        return [k for s in self.steps for k in s.keys]


def _masked(text: str) -> str:
    """``text`` with code spans and fences blanked out (same length, so offsets stay valid)."""
    return CODE.sub(lambda m: " " * len(m.group(0)), text)


def _normalise(text: str) -> str:
    return " ".join(text.replace("\\\n", " ").split())


def parse(path: Path) -> list[Block]:
    """Every marked block of the Markdown file ``path``.

    Raises:
        ValueError: a malformed block (no end marker, a line without ``=>``, a command that is not
            shown, or a different number of values and keys); names the file and line.
    """
    text = path.read_text()
    fences = [f.span() for f in FENCE.finditer(text)]
    blocks = []
    for m in OPEN.finditer(text):
        if any(start <= m.start() < end for start, end in fences):
            continue  # a marker shown as an example inside a code fence
        line = text.count("\n", 0, m.start()) + 1
        where = f"{path}:{line}"
        end = text.find(CLOSE, m.end())
        if end < 0:
            raise ValueError(f"{where}: numbers block without {CLOSE}")
        steps, tolerance = [], 0.0
        for raw in m.group(1).strip().splitlines():
            raw = raw.strip()
            if not raw:
                continue
            if raw.startswith("tolerance:"):
                tolerance = float(raw.split(":", 1)[1])
                continue
            if "=>" not in raw:
                raise ValueError(f"{where}: expected '<command> => <keys>', got {raw!r}")
            command, keys = raw.split("=>", 1)
            steps.append(Step(command.strip(), keys.split()))
        block = Block(path, line, steps, tolerance, m.end(), end)
        body = _masked(text[block.body_start : block.body_end])
        block.numbers = [(block.body_start + n.start(), block.body_start + n.end(), n.group(0))
                         for n in NUMBER.finditer(body)]  # fmt: skip
        if len(block.numbers) != len(block.keys):
            raise ValueError(
                f"{where}: {len(block.numbers)} numbers in the block but {len(block.keys)} keys in "
                f"its commands: {[n for *_, n in block.numbers]}"
            )
        above = "\n".join(text[: m.start()].splitlines()[-VISIBLE_LINES:])
        visible = _normalise(above + "\n" + text[block.body_start : block.body_end])
        for step in steps:
            if _normalise(step.command) not in visible:
                raise ValueError(
                    f"{where}: the command {step.command!r} is not shown next to its numbers; "
                    "write it out in the block or just above it"
                )
        blocks.append(block)
    return blocks


ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_block(block: Block, workdir: Path, log=print) -> list[float]:
    """Run the block's commands; return the fresh values of its keys, in order."""
    values: list[float] = []
    previous: Path | None = None
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    # One CPU thread: training runs are bit-reproducible for a thread count, not across counts
    # (reductions are split differently), so the documented numbers are taken with one.
    env = {**os.environ, "PYTHONPATH": path, **ONE_THREAD}
    for i, step in enumerate(block.steps):
        run_dir = workdir / f"step{i}"
        command = step.command
        if "<run>" in command:
            if previous is None:
                raise ValueError(f"{block.path}:{block.line}: '<run>' in the block's first command")
            command = command.replace("<run>", str(previous))
        args = shlex.split(command)
        if args[:1] == ["python"]:
            args[0] = sys.executable
        args.append(f"hydra.run.dir={run_dir}")
        log(f"  $ {command}")
        done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"{block.path}:{block.line}: `{command}` failed ({done.returncode}):\n"
                + (done.stdout + done.stderr)[-3000:]
            )
        metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
        missing = [k for k in step.keys if k not in metrics]
        if missing:
            raise KeyError(f"`{command}` wrote no {missing}; it has {sorted(metrics)}")
        values += [float(metrics[k]) for k in step.keys]
        previous = run_dir
    return values


def _decimals(number: str) -> int:
    return len(number.split(".")[1])


def compare(block: Block, values: list[float]) -> list[str]:
    """Mismatches between the shown numbers and fresh ``values`` (empty: the block is right)."""
    out = []
    for (_, _, shown), key, value in zip(block.numbers, block.keys, values, strict=True):
        fresh = f"{value:.{_decimals(shown)}f}"
        if abs(float(fresh) - float(shown)) > block.tolerance + 1e-9:
            out.append(f"{block.path}:{block.line}: {key} shows {shown}, a fresh run gives {fresh}")
    return out


def update(path: Path, blocks: list[Block], fresh: dict[int, list[float]]) -> None:
    """Rewrite the numbers of ``blocks`` (index -> fresh values) in ``path``, same decimals."""
    text = path.read_text()
    edits = []
    for i, block in enumerate(blocks):
        if i in fresh:
            for (start, end, shown), value in zip(block.numbers, fresh[i], strict=True):
                edits.append((start, end, f"{value:.{_decimals(shown)}f}"))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--update", action="store_true", help="rewrite the numbers")
    parser.add_argument("--list", action="store_true", help="list the blocks, run nothing")
    parser.add_argument("--block", type=int, action="append", help="only these block numbers")
    ns = parser.parse_args(argv)
    files = ns.files or [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    problems: list[str] = []
    for path in files:
        blocks = parse(path)
        fresh: dict[int, list[float]] = {}
        for i, block in enumerate(blocks, start=1):
            if ns.block and i not in ns.block:
                continue
            print(f"{path.name} block {i} (line {block.line}): {len(block.keys)} numbers")
            if ns.list:
                for step in block.steps:
                    print(f"  $ {step.command}  =>  {' '.join(step.keys)}")
                continue
            with tempfile.TemporaryDirectory(prefix="doc_numbers_") as tmp:
                values = run_block(block, Path(tmp))
            found = compare(block, values)
            problems += found
            print("  ok" if not found else "\n".join(f"  {p}" for p in found))
            fresh[i - 1] = values
        if ns.update and fresh:
            update(path, blocks, fresh)
            print(f"updated {path}")
    if problems and not ns.update:
        print(f"{len(problems)} number(s) differ from a fresh run (--update rewrites them)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
