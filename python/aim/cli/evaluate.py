"""``aim eval RUN --tasks ... --out ...``: closed-loop evaluation in Meta-World, or ``--robotwin-policy``:
the policy folder RoboTwin 2.0's own harness evaluates."""

from __future__ import annotations

import argparse

from aim.errors import UsageError


def add_parsers(verbs) -> None:
    evaluate = verbs.add_parser("eval", help="closed-loop evaluation of a run in Meta-World (or write a RoboTwin policy)")
    evaluate.add_argument("run_dir", help="a training run (its latest checkpoint) or a checkpoint directory")
    evaluate.add_argument("--tasks", nargs="+", help="Meta-World task ids, e.g. pick-place-v3")
    evaluate.add_argument("--episodes", type=int, default=20, help="episodes per task, on held-out seeds")
    evaluate.add_argument("--workers", type=int, default=1)
    evaluate.add_argument("--out", help="folder for results.json and rollout videos")
    evaluate.add_argument("--max-steps", type=int, help="step limit (default: the task's own)")
    evaluate.add_argument("--video-steps", type=int, default=25)
    evaluate.add_argument("--action-steps", type=int, default=50)
    evaluate.add_argument("--guidance", type=float, default=5.0, help="classifier-free guidance scale (video, value)")
    evaluate.add_argument("--videos-per-task", type=int, default=1)
    evaluate.add_argument("--video-format", choices=("gif", "mp4"), default="gif")
    evaluate.add_argument("--seed", type=int, default=0, help="the policy's noise seed")
    evaluate.add_argument("--device", default="cpu")
    evaluate.add_argument("--no-progress", action="store_true")
    evaluate.add_argument("--robotwin-policy", metavar="ROBOTWIN_ROOT",
                          help="instead of evaluating, write policy/AIM/ into a RoboTwin checkout")
    evaluate.set_defaults(run=run)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from aim.model.sampler import SamplerConfig

    sampler = SamplerConfig(args.video_steps, args.guidance, args.action_steps)
    if args.robotwin_policy:
        from aim.eval.robotwin import write_policy_folder

        folder = write_policy_folder(args.robotwin_policy, args.run_dir, sampler_config=sampler, device=args.device)
        print(f"wrote {folder}; run its eval.sh from there")
        return 0
    if not args.tasks or not args.out:
        raise UsageError("eval needs --tasks and --out (or --robotwin-policy)")
    from rich.console import Console

    from aim.eval.results import results_table, summarise, write_results
    from aim.eval.runner import EvalSettings, evaluate

    settings = EvalSettings(tuple(args.tasks), args.episodes, sampler, args.max_steps, args.seed,
                            args.videos_per_task, args.video_format, args.device)
    episodes = evaluate(args.run_dir, settings, args.out, workers=args.workers, progress=not args.no_progress)
    results = summarise(episodes, settings, run=str(args.run_dir))
    path = write_results(f"{args.out}/results.json", results)
    Console().print(results_table(results))
    print(f"wrote {path}")
    return 0
