"""Benchmark: what a rollout video adds to an evaluation episode (renders for people, overlays,
captions, GIF encoding).

For the first held-out seeds of every demo task, the same episode runs twice in one process with
the demo's sampler and step limit: without a video (the reference: what every other evaluation
episode costs) and with one (``EvalSettings``' video size and frame spacing). Recording leaves the
episode unchanged, so both runs take the same steps; the difference is the video's cost. The
last rows estimate what the videos add to ``aim demo`` (one per task and evaluated variant) and
time one render for people of the three views on its own.

Prints a table and appends it with device, versions and date to benchmarks/RESULTS.md
(``--no-record`` to skip).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import environment, record

from aim.demo.settings import DEMO_TASKS, DemoSettings
from aim.eval.episode import run_episode
from aim.eval.metaworld_suite import suite_for_run
from aim.eval.runner import EvalSettings, worker_policy
from aim.eval.seeds import eval_seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="aim-demo/runs/aim", help="a trained run or checkpoint (the demo's aim run)")
    parser.add_argument("--tasks", nargs="+", default=list(DEMO_TASKS))
    parser.add_argument("--episodes", type=int, default=2, help="held-out seeds per task")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a demo worker's share of 2 cores)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    demo, video = DemoSettings(), EvalSettings(tasks=tuple(args.tasks), episodes=1)
    policy = worker_policy(args.run, demo.sampler, 0, "cpu", args.threads)
    suite = suite_for_run(args.run)
    rows, added = [], []
    with tempfile.TemporaryDirectory() as folder:
        for task in args.tasks:
            for seed in eval_seeds(args.episodes):
                started = time.perf_counter()
                plain = run_episode(policy, suite, task, seed, demo.eval_max_steps)
                without = time.perf_counter() - started
                path = Path(folder) / f"{task}_{seed}.gif"
                started = time.perf_counter()
                recorded = run_episode(policy, suite, task, seed, demo.eval_max_steps, path, video.video_size,
                                       video.video_every)
                with_video = time.perf_counter() - started
                assert (plain.steps, plain.success) == (recorded.steps, recorded.success), "recording changed the episode"
                frames = 1 + -(-recorded.steps // video.video_every)
                added.append(with_video - without)
                rows.append(f"| {task} | {seed} | {recorded.steps} | {frames} | {without:.2f} s | {with_video:.2f} s | "
                            f"{with_video - without:+.2f} s | {1e3 * (with_video - without) / frames:.0f} ms | "
                            f"{path.stat().st_size / 1024:.0f} KB |")
        env = suite.make(args.tasks[0], tuple(policy.bundle.cameras), tuple(policy.bundle.image_size))
        env.reset(eval_seeds(1)[0])
        suite.view(env, video.video_size, video.video_size)  # the renderer is made on first use
        render_ms = []
        for _ in range(20):
            started = time.perf_counter()
            suite.view(env, video.video_size, video.video_size)
            render_ms.append(1e3 * (time.perf_counter() - started))
    videos = len(args.tasks) * len(demo.evaluated)
    header = ("| task | seed | steps | video frames | episode without video (reference) | with video | added | "
              "added per frame | GIF |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = (f"\n\nMedian added per video: {statistics.median(added):.2f} s; `aim demo` records {videos} videos "
               f"({len(args.tasks)} tasks x {len(demo.evaluated)} variants, two workers): about "
               f"{statistics.median(added) * videos / 2:.0f} s of wall time. One render for people of the "
               f"{len(policy.bundle.cameras)} views at {video.video_size} px: {statistics.median(render_ms):.0f} ms "
               "(median of 20).")
    table = header + "\n" + "\n".join(rows) + summary
    title = (f"### rollout videos: {video.video_size} px views every {video.video_every} steps, demo sampler, "
             f"at most {demo.eval_max_steps} steps, {args.threads} torch thread(s), run {args.run}")
    print(f"{title}\n{environment(torch.device('cpu'))}\n\n{table}")
    if not args.no_record:
        record(title, f"{environment(torch.device('cpu'))}\n\n{table}")


if __name__ == "__main__":
    main()
