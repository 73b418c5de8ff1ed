"""One static ``index.html`` of a prediction run: opens from disk, no server, no scripts.

Each image gets a card: its thumbnail, the tags with their probabilities, a table of the most
probable labels (score, probability, threshold) and the heatmap overlays (thumbnails linking to
the full-size PNGs). Every link is relative, so the run folder can be copied anywhere.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["GALLERY_FILE", "write_gallery"]

GALLERY_FILE = "index.html"
_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
h1{font-size:1.3em} .meta{color:#666;font-size:.9em}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.8em;margin:.8em 0;
display:flex;gap:1em;flex-wrap:wrap}
.card img.thumb{width:192px;height:auto;max-width:256px;border:1px solid #ccc}
.tag{display:inline-block;background:#2a6ebb;color:#fff;border-radius:3px;padding:1px 6px;
margin:2px}
table{border-collapse:collapse;font-size:.85em} td,th{padding:2px 8px;text-align:right}
td:first-child,th:first-child{text-align:left} tr.tagged{font-weight:bold}
.bar{background:#2a6ebb;height:8px;display:inline-block}
.heat{display:inline-block;text-align:center;font-size:.8em;margin:2px}
.heat img{width:128px;height:auto;border:1px solid #ccc;display:block}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _card(record: dict[str, Any], top: int) -> str:
    labels = record["labels"]
    order = sorted(labels, key=lambda n: -labels[n]["probability"])[:top]
    tags = "".join(
        f'<span class="tag">{_e(t)} {labels[t]["probability"]:.2f}</span>' for t in record["tags"]
    ) or '<span class="meta">no tag above threshold</span>'
    rows = "".join(
        f'<tr class="{"tagged" if n in record["tags"] else ""}"><td>{_e(n)}</td>'
        f'<td>{labels[n]["score"]:.4g}</td><td>{labels[n]["probability"]:.3f} '
        f'<span class="bar" style="width:{int(60 * labels[n]["probability"])}px"></span></td>'
        f'<td>{labels[n]["threshold"]:.3f}</td></tr>'
        for n in order
    )
    heat = "".join(
        f'<a class="heat" href="{_e(path)}"><img src="{_e(path)}" alt="{_e(n)}">{_e(n)}</a>'
        for n, path in (record.get("heatmap_files") or {}).items()
    )
    panel = record.get("panel_file")
    if panel:
        heat += f'<a class="heat" href="{_e(panel)}"><img src="{_e(panel)}" alt="panel">panel</a>'
    thumb = record.get("thumbnail")
    img = f'<a href="{_e(thumb)}"><img class="thumb" src="{_e(thumb)}" alt=""></a>' if thumb else ""
    return (
        f'<div class="card">{img}<div><div><b>{_e(Path(record["image"]).name)}</b> '
        f'<span class="meta">{record["width"]} x {record["height"]} px</span></div>'
        f"<div>{tags}</div><table><tr><th>label</th><th>score</th><th>probability</th>"
        f"<th>threshold</th></tr>{rows}</table><div>{heat}</div></div></div>"
    )


def write_gallery(
    folder: str | Path, records: Sequence[dict[str, Any]], title: str = "ramlico predictions",
    info: dict[str, Any] | None = None, top: int = 10,
) -> Path:  # fmt: skip
    """Write ``folder/index.html`` for prediction ``records`` (``Prediction.to_record()`` plus
    ``thumbnail``, ``heatmap_files`` and ``panel_file``, paths relative to ``folder``).

    Args:
        top: labels listed per image (most probable first).
    """
    folder = Path(folder)
    meta = " &middot; ".join(f"{_e(k)}: {_e(v)}" for k, v in (info or {}).items())
    body = "".join(_card(r, top) for r in records)
    page = (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>"
        f'<div class="meta">{len(records)} images &middot; {meta}</div>{body}</body></html>'
    )
    out = folder / GALLERY_FILE
    out.write_text(page, encoding="utf-8")
    return out
