"""Markdown tables of a GPU-suite result (``benchmarks/gpu_suite.py``) and the README's GPU block.

``render_markdown(results)`` turns the suite's JSON into the tables README.md shows under
"Performance"; ``update_readme(text, table)`` puts a table between the README's markers::

    <!-- gpu-suite:begin -->
    ...generated, do not edit by hand...
    <!-- gpu-suite:end -->

Both are pure functions of their inputs (tested in tests/test_gpu_suite.py).
"""

from __future__ import annotations

from typing import Any

BEGIN = "<!-- gpu-suite:begin -->"
END = "<!-- gpu-suite:end -->"
# Column order of the Sinkhorn table; only implementations present in the results are shown.
IMPLS = (
    "ramlico",
    "ramlico (graph)",
    "ramlico (compiled)",
    "ramlico (log)",
    "plain log loop",
    "POT batch (log)",
    "POT looped (sinkhorn)",
)
ENGINE = ("ramlico", "ramlico (graph)", "ramlico (compiled)", "ramlico (log)")


def fmt(value: float | None, unit: str = "") -> str:
    """Three significant figures without exponents (``0.912``, ``18.0``, ``1351``); ``-`` = none."""
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return text + unit


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _header(results: dict[str, Any]) -> list[str]:
    meta = results.get("meta", {})
    where = meta.get("gpu") or f"CPU ({meta.get('cpu', '?')}, {meta.get('cpu_count', '?')} cores)"
    versions = f"torch {meta.get('torch', '?')}"
    if meta.get("cuda"):
        versions += f", CUDA {meta['cuda']}"
    when = (meta.get("date") or "?")[:10]
    commit = f", commit {meta['commit'][:10]}" if meta.get("commit") else ""
    lines = [f"**{where}** ({versions}; {when}{commit}{'; smoke sizes' * bool(meta.get('smoke'))})"]
    tests = results.get("tests")
    if tests:
        kinds = ("passed", "failed", "skipped")
        counts = ", ".join(f"{tests[k]} {k}" for k in kinds if tests.get(k))
        lines.append(f"CUDA tests (`pytest -m gpu`): {counts or 'none ran'}.")
    if meta.get("command"):
        lines.append(f"Command: `{meta['command']}`.")
    return [" ".join(lines), ""]


def _sinkhorn(section: dict[str, Any]) -> list[str]:
    rows = section.get("rows", [])
    present = [i for i in IMPLS if any(r["impl"] == i for r in rows)]
    bandwidth = next(iter(section.get("meta", {}).get("copy_bandwidth_gb_s", {}).values()), None)
    lines = [
        "Sinkhorn, fp32, fixed iterations, median ms (`x` = time / `ramlico` default). Floor: 8 "
        f"bytes per kernel entry and iteration at the measured copy bandwidth "
        f"({fmt(bandwidth)} GB/s); `x floor` = fastest engine path / floor.",
        "",
    ]
    body = []
    for case in dict.fromkeys(r["case"] for r in rows):
        got = {r["impl"]: r for r in rows if r["case"] == case}
        first = next(iter(got.values()))
        cells = [case, first["shape"], str(first["iters"])]
        for impl in present:
            r = got.get(impl)
            if r is None:
                cells.append("-")
            elif impl == "ramlico":
                cells.append(fmt(r["median_ms"]))
            else:
                cells.append(f"{fmt(r['median_ms'])} ({fmt(r['speedup_of_ramlico'])}x)")
        best = min((got[i]["median_ms"] for i in ENGINE if i in got), default=None)
        floor = first.get("floor_ms")
        cells += [fmt(floor), fmt(best / floor) if best and floor else "-"]
        body.append(cells)
    head = ["case", "shape", "iters", *present, "floor", "x floor"]
    return lines + _table(head, body) + [""]


def _ram(section: dict[str, Any]) -> list[str]:
    rows = section.get("rows", [])
    if not rows:
        return []
    names = {"baseline": "frozen CLIP zero-shot (floor)", "train": "RAM training step",
             "infer": "RAM inference"}  # fmt: skip
    first = rows[0]
    lines = [
        f"RAM, {first['model']} at random init, {first['image_size']} px, "
        f"{first['precision']} autocast (`x floor` = samples/s / the same batch's floor):",
        "",
    ]
    body = [
        [str(r["batch"]), names.get(r["mode"], r["mode"]), fmt(r["samples_per_s"]),
         fmt(r.get("throughput_vs_baseline")), fmt(r["peak_mem_gib"])]
        for r in rows
    ]  # fmt: skip
    head = ["batch", "what", "samples/s", "x floor", "peak memory (GiB)"]
    return lines + _table(head, body) + [""]


def _lazsl(r: dict[str, Any]) -> list[str]:
    share = r.get("share", {})
    head = ["classes", "crops", "precision", "images/s", "encoder", "OT", "crops share"]
    body = [[
        str(r["classes"]), str(r["crops"]), r["precision"], fmt(r["images_per_s"]),
        f"{100 * share.get('encoder', 0):.1f} %", f"{100 * share.get('ot', 0):.1f} %",
        f"{100 * share.get('crop', 0):.1f} %",
    ]]  # fmt: skip
    return (
        [f"LaZSL, {r['model']} at random init, batch {r['batch']}:", ""] + _table(head, body) + [""]
    )


def _lico(r: dict[str, Any]) -> list[str]:
    head = ["backbone", "batch", "classes", "CE step (s)", "LICO step (s)", "overhead",
            "OT loss fwd+bwd (s)"]  # fmt: skip
    body = [[
        r["backbone"], str(r["batch"]), str(r["classes"]), fmt(r["ce_step_s"]),
        fmt(r["lico_step_s"]), f"{fmt(r['overhead_ratio'])}x", fmt(r["ot_loss_fwd_bwd_s"]),
    ]]  # fmt: skip
    amp = "bf16 autocast" if r.get("amp") else "fp32"
    return (
        [f"LICO training step vs CE on the same network ({amp}):", ""] + _table(head, body) + [""]
    )


def _otfusion(r: dict[str, Any]) -> list[str]:
    peak = r.get("peak_cuda_gib") if r.get("peak_cuda_gib") is not None else r.get("peak_rss_gib")
    head = ["N x K", "rounds", "seconds", "s / round", "peak memory (GiB)"]
    body = [[f"{r['n']:,} x {r['k']:,}", str(r["rounds"]), fmt(r["seconds"]),
             fmt(r["seconds_per_round"]), fmt(peak)]]  # fmt: skip
    return ["OTFusion transductive fusion (features given):", ""] + _table(head, body) + [""]


RENDERERS = {"sinkhorn": _sinkhorn, "ram": _ram, "lazsl": _lazsl, "lico": _lico,
             "otfusion": _otfusion}  # fmt: skip


def render_markdown(results: dict[str, Any]) -> str:
    """The suite's JSON as markdown: a header line, then one table per section present."""
    lines = _header(results)
    for name, render in RENDERERS.items():
        if results.get(name):
            lines += render(results[name])
    for name, why in results.get("errors", {}).items():
        lines.append(f"- {name}: failed ({why.strip().splitlines()[-1]})")
    for name, why in results.get("skipped", {}).items():
        lines.append(f"- {name}: skipped ({why})")
    return "\n".join(lines).rstrip() + "\n"


def update_readme(text: str, table: str) -> str:
    """``text`` with everything between the GPU-suite markers replaced by ``table``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(
            f"README needs exactly one {BEGIN} ... {END} block (in the Performance section) for "
            "the GPU table; add the two marker lines where the table goes"
        )
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{table.strip()}\n{END}{tail}"
