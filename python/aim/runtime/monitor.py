"""What a person watches during training: TensorBoard, a metrics file, a progress bar with ETA.

Only the main process writes. Every step's scalars go to ``<run>/metrics.jsonl`` (one JSON
object per step: losses per stream, grad norm, lr, tokens/s, data-wait time), which reports and
tests read without TensorBoard; every ``log.every`` steps they also go to TensorBoard
(``<run>/tensorboard``). On resume, entries after the resumed step (written by the killed job
after its last checkpoint) are dropped, so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The per-step metrics of a run, in step order."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Monitor:
    """``postfix`` maps the progress bar's labels to the scalars they show (default: the total
    loss); ``desc`` names the bar. Stage II (``aim.rl``) shows its return and success this way."""

    def __init__(self, run_dir: Path, enabled: bool, start_step: int, total_steps: int, every: int,
                 progress: bool, desc: str = "train", postfix: Mapping[str, str] | None = None) -> None:
        self.enabled, self.every = enabled, every
        self.postfix = dict(postfix or {"loss": "loss/total"})
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        self.metrics_path = run_dir / METRICS_FILE
        kept = [m for m in read_metrics(run_dir) if m["step"] <= start_step]
        self.metrics_path.write_text("".join(json.dumps(m) + "\n" for m in kept))
        self.metrics = self.metrics_path.open("a")
        self.writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=start_step + 1)
        self.bar = tqdm(total=total_steps, initial=start_step, desc=desc, unit="step", disable=not progress,
                        dynamic_ncols=True)

    def step(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.metrics.write(json.dumps({"step": step, **scalars}) + "\n")
        self.metrics.flush()
        if step % self.every == 0:
            for name, value in scalars.items():
                self.writer.add_scalar(name, value, step)
        self.bar.set_postfix({label: f"{scalars[name]:.4f}" for label, name in self.postfix.items()}, refresh=False)
        self.bar.update(1)

    def images(self, step: int, images: dict[str, torch.Tensor]) -> None:
        """Images (3, H, W) in [0, 1] by tag."""
        if not self.enabled:
            return
        for tag, image in images.items():
            self.writer.add_image(tag, image, step)
        self.writer.flush()

    def message(self, text: str) -> None:
        if self.enabled:
            self.bar.write(text)

    def close(self) -> None:
        if not self.enabled:
            return
        self.bar.close()
        self.writer.close()
        self.metrics.close()
