"""The demo report: one HTML page with PNG figures, the success table and rollout videos.

Everything it shows is read back from the demo's folder (metrics files of the training runs, the
evaluation results documents, the videos they name), so the page can be rebuilt without rerunning
anything. Every path in the page is relative to the page's own folder (whatever the working
directory was when the demo ran), so the folder can be opened from anywhere, moved or zipped.
"""

from __future__ import annotations

import html
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch

from aim.demo import ablation_section, figures
from aim.demo.settings import RL_VARIANT, DemoSettings, results_path, run_dir
from aim.eval.runner import VIDEO_DIR
from aim.train.samples import FIGURE_VIEW_PIXELS

GOAL = 0.70  # the demo's target: mean closed-loop success over its tasks

VARIANT_NOTES = {
    "aim": "the model of the paper: intent-causal attention, value-map stream",
    "no-value-map": "ablation: no value-map stream (future information never reaches the actions)",
    "actions-see-video": "ablation: future actions also attend to the chunk's imagined future video",
    RL_VARIANT: "the aim run after Stage II RL (GRPO on the action stream; value-map and success rewards)",
}


def write_report(out: Path, settings: DemoSettings, results: dict[str, dict], seconds: dict[str, float]) -> Path:
    """Writes ``out/report.html`` (and its figures under ``out/figures``) and returns its path."""
    out = Path(out)
    figure_dir = out / "figures"
    figure_dir.mkdir(exist_ok=True)
    runs = {variant: run_dir(out, variant) for variant in results if variant != RL_VARIANT}
    losses = figures.loss_curves(runs, figure_dir / "losses.png")
    predictions = {variant: figures.predictions(run, out / "heldout", figure_dir / f"predictions-{variant}.png")
                   for variant, run in runs.items()}
    sections = [
        _header(settings, seconds),
        _success_table(results, settings.tasks),
        f"<h2>Training losses</h2>{_image(out, losses, 'loss curves per stream and variant')}",
        _predictions(out, predictions),
        *([_reinforcement(out, figures.rl_curves(run_dir(out, RL_VARIANT), figure_dir / "rl.png"))]
          if RL_VARIANT in results else []),
        _rollouts(out, results),
        ablation_section.html_section(out / "ablation" / "ablation.json"),
    ]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>aim demo</title><style>{_STYLE}</style>"
            f"</head><body>{''.join(sections)}</body></html>")
    path = out / "report.html"
    path.write_text(page)
    return path


def _header(settings: DemoSettings, seconds: dict[str, float]) -> str:
    stages = "".join(f"<tr><td>{html.escape(name)}</td><td>{s / 60:.1f} min</td></tr>" for name, s in seconds.items())
    stages = stages or "<tr><td colspan=2>every stage was reused from an earlier run</td></tr>"
    return (
        "<h1>aim demo</h1>"
        f"<p>{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC · {html.escape(platform.machine())} · "
        f"{os.cpu_count()} CPUs · torch {torch.__version__}</p>"
        f"<p>Tasks: {', '.join(settings.tasks)}. {settings.train_episodes} scripted-expert episodes per task "
        f"(seeds 0-{settings.train_episodes - 1}) train the <code>tiny</code> preset for {settings.train_steps} "
        f"steps; each variant is then evaluated in closed loop on {settings.eval_episodes} held-out seeds per "
        f"task (at most {settings.eval_max_steps} steps per episode).</p>"
        f"<table><tr><th>stage (run by this call)</th><th>time</th></tr>{stages}</table>"
    )


def _success_table(results: dict[str, dict], tasks: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(v)}</th>" for v in results)
    rows = []
    for task in tasks:
        cells = "".join(_success_cell(r["tasks"][task]) for r in results.values())
        rows.append(f"<tr><td>{html.escape(task)}</td>{cells}</tr>")
    means = "".join(f"<td><b>{r['mean_success_rate']:.0%}</b></td>" for r in results.values())
    latency = "".join(f"<td>{_seconds(r['latency_s'].get('median_s'))}</td>" for r in results.values())
    notes = "".join(f"<li><b>{html.escape(v)}</b>: {html.escape(VARIANT_NOTES[v])}</li>" for v in results)
    verdict = ""
    if "aim" in results:
        mean = results["aim"]["mean_success_rate"]
        verdict = (f"<p>Goal: at least {GOAL:.0%} mean success for <b>aim</b>; measured {mean:.0%} "
                   f"({'met' if mean >= GOAL else 'not met'}).</p>")
    return (
        "<h2>Closed-loop success</h2>"
        "<p>Successes / episodes, with the 95% Wilson interval.</p>"
        f"<table><tr><th>task</th>{head}</tr>{''.join(rows)}<tr><td>mean</td>{means}</tr>"
        f"<tr><td>median latency per chunk</td>{latency}</tr></table>{verdict}<ul>{notes}</ul>"
    )


def _success_cell(task: dict) -> str:
    low, high = task["ci95"]
    return (f"<td>{task['successes']}/{task['episodes']} ({task['success_rate']:.0%})"
            f"<br><small>[{low:.0%}, {high:.0%}] · {task['mean_steps']:.0f} steps</small></td>")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:.0f} ms"


def _predictions(out: Path, pictures: dict[str, Path]) -> str:
    blocks = "".join(f"<details{' open' if i == 0 else ''}><summary>{html.escape(variant)}</summary>"
                     f"{_image(out, path, f'imagined vs true future of {variant}')}</details>"
                     for i, (variant, path) in enumerate(pictures.items()))
    return ("<h2>Imagined vs true future</h2><p>One held-out expert episode per task (top to bottom), from its "
            "start, chunk by chunk: before each chunk the model has seen the true frames and actions so far, as "
            "in closed loop. Rows: the chunk's true frames, the frames the model imagined, and (with a "
            "value stream) the true and the imagined value map in magenta over the true frame. Each picture is the "
            "model's canvas (its views packed as it sees them: the first camera on top, the other two halved "
            f"below) upscaled by whole pixels to at least {FIGURE_VIEW_PIXELS} px wide.</p>{blocks}")


def _reinforcement(out: Path, curves: Path) -> str:
    return ("<h2>Stage II (RL)</h2><p>Per RL iteration: the success rate and mean return of the groups rolled "
            "out with the action SDE (training seeds), the value-map reward per step, and the update's KL to "
            f"the sampling policy and clip fraction. Held-out success is in the table above.</p>"
            f"{_image(out, curves, 'RL curves')}")


def _rollouts(out: Path, results: dict[str, dict]) -> str:
    blocks = []
    for variant, result in results.items():
        items = []
        for episode in (e for e in result["episodes"] if e.get("video")):
            video = results_path(out, variant).parent / VIDEO_DIR / Path(episode["video"]).name
            caption = (f"{html.escape(episode['task'])} · seed {episode['seed']} · "
                       f"{'success' if episode['success'] else 'failure'} in {episode['steps']} steps")
            items.append(f"<figure>{_video(out, video, episode['task'])}<figcaption>{caption}</figcaption></figure>")
        blocks.append(f"<h3>{html.escape(variant)}</h3>{''.join(items)}")
    return ("<h2>Rollouts</h2><p>The first held-out episode of every task, rendered again for viewing from the "
            "model's cameras (the model itself sees the small canvas on the right). Magenta: the value map the "
            "current chunk predicts; green: the end-effector targets its actions command.</p>" + "".join(blocks))


def _image(out: Path, path: Path, alt: str) -> str:
    return f"<img src='{html.escape(_relative(out, path))}' alt='{html.escape(alt)}'>"


def _video(out: Path, path: Path, alt: str) -> str:
    """A GIF as an image, an MP4 as a looping video; a file that is missing is said so."""
    if not path.is_file():
        return f"<p class='missing'>missing: {html.escape(_relative(out, path))}</p>"
    if path.suffix.lower() == ".mp4":
        return (f"<video src='{html.escape(_relative(out, path))}' autoplay loop muted controls "
                f"title='{html.escape(alt)}'></video>")
    return _image(out, path, alt)


def _relative(out: Path, path: Path) -> str:
    """``path`` (under ``out``, absolute or relative to the working directory) as a URL relative
    to the report's folder, so the folder can be opened from anywhere, moved or zipped."""
    return Path(path).resolve().relative_to(Path(out).resolve()).as_posix()


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: left; vertical-align: top; }
img, video { max-width: 100%; }
figure { margin: 0.5em 0 1.5em 0; }
summary { cursor: pointer; font-weight: bold; margin: 0.5em 0; }
.missing { color: #a00; }
"""
