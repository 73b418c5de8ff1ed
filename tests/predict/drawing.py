"""Images the prediction tests draw themselves (never the training data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ramlico.data.generated import GENERATED_SEEN, GENERATED_UNSEEN, draw_scene

LABELS = sorted(GENERATED_SEEN) + sorted(GENERATED_UNSEEN)


def draw_images(folder: Path, n: int, seed: int, size: int = 64) -> list[tuple[Path, list[dict]]]:
    """``n`` new scenes (not the training data): 1-3 labelled objects each, written as PNG."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        k = int(rng.integers(1, 4))
        labels = [LABELS[j] for j in rng.choice(len(LABELS), size=k, replace=False)]
        image, objects = draw_scene(labels, size, rng)
        path = folder / f"drawn_{i:03d}.png"
        image.save(path)
        out.append((path, objects))
    return out
