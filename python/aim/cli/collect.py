"""``aim collect OUT --tasks ... --seeds ...``: Meta-World experts rolled out into a labelled dataset."""

from __future__ import annotations

import argparse


def add_parsers(verbs) -> None:
    collect = verbs.add_parser("collect", help="roll out Meta-World experts into a dataset (resumes)")
    collect.add_argument("out")
    collect.add_argument("--tasks", nargs="+", required=True, help="Meta-World task ids, e.g. pick-place-v3")
    collect.add_argument("--seeds", nargs="+", type=int, required=True)
    collect.add_argument("--cameras", nargs="+", help="Meta-World camera names (default: two fixed, one on the hand)")
    collect.add_argument("--size", type=int, default=128, help="square image size in pixels")
    collect.add_argument("--action-space", choices=("target", "delta"), default="target",
                         help="actions as the hand's target position (default) or Meta-World's displacements")
    collect.add_argument("--max-steps", type=int, help="step limit (default: the task's own)")
    collect.add_argument("--frame-every", type=int, default=1,
                         help="render the views every K-th step only (train with a frame stride that is a multiple)")
    collect.add_argument("--multisample", type=int, help="anti-aliasing samples per pixel (default: Meta-World's "
                         "own, 4; 0 renders in less than half the time on a CPU); evaluation renders the same way")
    collect.add_argument("--workers", type=int, default=1)
    collect.add_argument("--no-progress", action="store_true")
    collect.set_defaults(run=run)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from aim.sim.collect import DEFAULT_CAMERAS, CollectSettings, collect

    settings = CollectSettings(tuple(args.cameras or DEFAULT_CAMERAS), args.size, args.size, args.max_steps,
                               args.action_space, args.frame_every, args.multisample)
    report = collect(args.out, args.tasks, args.seeds, settings, workers=args.workers, progress=not args.no_progress)
    print(f"{report.written} episodes written, {report.failed} failed (dropped), {report.skipped} already present")
    return 0
