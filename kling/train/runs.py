"""What every trainer's run shares: one folder per training recipe under a model's root (a re-run of the
same recipe resumes there or does nothing), `latest.json` at the root pointing at the last run, and the loss
curve as Parquet and as a small plot."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from kling.atomic import atomic_write_json, write_parquet_atomic
from kling.hashing import config_hash

LATEST = "latest.json"
SPARKS = "▁▂▃▄▅▆▇█"


def recipe_dir(root: str | Path, recipe: dict) -> Path:
    """`root/<hash of the recipe>`: what identifies a run across machines (data identity, configuration,
    trainer version), never the thread count or the weights' bytes."""
    return Path(root) / config_hash(recipe)


def recipe_config(cfg) -> dict:
    """A trainer's config as its recipe records it: without the thread count, which is the machine's choice."""
    config = dataclasses.asdict(cfg)
    config.pop("threads", None)
    if "sides" in config and not config["sides"]:  # added later: recipes that leave it unset keep the hash they had
        config.pop("sides")
    return config


def latest_step(out_dir: Path) -> Path | None:
    """The last complete checkpoint folder (`step-XXXXXX/` with its meta.json, written last) of a run."""
    done = sorted(p.parent for p in Path(out_dir).glob("step-*/meta.json"))
    return done[-1] if done else None


def set_cosine_lr(opt, base_lr: float, step: int, steps: int) -> None:
    """Cosine decay from `base_lr` at step 0 towards 0 at `steps`: a function of the step alone, so a resumed run
    needs no scheduler state and repeats a straight one bit for bit."""
    lr = float(base_lr * 0.5 * (1 + np.cos(np.pi * step / steps)))
    for group in opt.param_groups:
        group["lr"] = lr


def point_latest(root: str | Path, run_dir: Path, meta: dict) -> None:
    atomic_write_json(Path(root) / LATEST, {"dir": str(run_dir), **meta})


def point_skipped(root: str | Path, reason: str) -> None:
    """Record at the root that this model was not trained, and why: what reads `latest.json` skips too, and never
    takes an earlier run for this one."""
    atomic_write_json(Path(root) / LATEST, {"skipped": reason})


def skipped(root: str | Path) -> str | None:
    """Why the model under `root` was not trained (None: it was, or has no pointer yet)."""
    pointer = Path(root) / LATEST
    return json.loads(pointer.read_text()).get("skipped") if pointer.is_file() else None


def latest_run(root: str | Path) -> Path | None:
    pointer = Path(root) / LATEST
    return Path(json.loads(pointer.read_text())["dir"]) if pointer.is_file() else None


def write_loss_curve(path: str | Path, history: list[dict]) -> Path:
    table = pa.Table.from_pylist(history) if history else pa.table({"step": pa.array([], pa.int64()),
                                                                    "loss": pa.array([], pa.float64())})
    return write_parquet_atomic(table, Path(path))


def _binned(losses: list[float], bins: int) -> list[float]:
    if len(losses) <= bins:
        return list(losses)
    edges = [round(i * len(losses) / bins) for i in range(bins + 1)]
    return [sum(losses[a:b]) / (b - a) for a, b in zip(edges, edges[1:])]


def sparkline(history: list[dict], bins: int = 48) -> str:
    """The loss curve in one line of text (mean per bin of steps), for logs and asset metadata."""
    v = _binned([h["loss"] for h in history], bins)
    if not v:
        return ""
    lo, hi = min(v), max(v)
    return "".join(SPARKS[int((x - lo) / (hi - lo) * (len(SPARKS) - 1)) if hi > lo else 0] for x in v)


def loss_plot_svg(history: list[dict], width: int = 480, height: int = 160, bins: int = 200) -> str:
    """The loss curve (mean per bin of steps, log scale) as a self-contained SVG."""
    import math

    v = [math.log10(max(x, 1e-12)) for x in _binned([h["loss"] for h in history], bins)]
    if len(v) < 2:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"></svg>'
    lo, hi = min(v), max(v)
    span = (hi - lo) or 1.0
    pts = " ".join(f"{8 + i * (width - 16) / (len(v) - 1):.1f},{8 + (hi - x) / span * (height - 28):.1f}" for i, x in enumerate(v))
    steps = history[-1]["step"]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">'
            f'<polyline fill="none" stroke="#2563eb" stroke-width="1.5" points="{pts}"/>'
            f'<text x="8" y="{height - 4}">loss (log10 {lo:.2f} .. {hi:.2f}) over {steps} steps</text></svg>')


def loss_plot_markdown(history: list[dict]) -> str:
    """Markdown with the SVG plot inlined (a data URI: no file, no server) and the text sparkline."""
    svg = base64.b64encode(loss_plot_svg(history).encode()).decode()
    return f"![loss](data:image/svg+xml;base64,{svg})\n\n`{sparkline(history)}`"
