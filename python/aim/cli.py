"""The ``aim`` command line: LeRobot-style verbs (``aim dataset info PATH``, ``aim collect OUT ...``,
``aim train RUN ...``, ``aim rl RUN --from RUN ...``, ``aim eval RUN ...``, ``aim demo [OUT]``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``aim``; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="aim", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    dataset = verbs.add_parser("dataset", help="inspect and convert datasets").add_subparsers(dest="action",
                                                                                              required=True)
    info = dataset.add_parser("info", help="summarise a LeRobot v3.0 dataset")
    info.add_argument("path")
    show = dataset.add_parser("preview", help="write a PNG of one frame's views with their value maps overlaid")
    show.add_argument("path")
    show.add_argument("--episode", type=int, default=0)
    show.add_argument("--frame", type=int, default=0)
    show.add_argument("--out", required=True)
    convert = dataset.add_parser("convert-robotwin", help="convert RoboTwin 2.0 HDF5 episodes (a <task>/<config> folder)")
    convert.add_argument("source")
    convert.add_argument("target")
    convert.add_argument("--fps", type=int, required=True, help="recording rate of the RoboTwin episodes")
    convert.add_argument("--mode", choices=("create", "overwrite", "append"), default="create")
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
    train = verbs.add_parser("train", help="Stage-I training (one process, or many under torchrun)",
                             epilog="example: aim train runs/tiny --preset tiny-metaworld data.root=DATASET "
                                    "train.steps=1000")
    _run_arguments(train, "training", "optim.lr=3e-4")
    rl = verbs.add_parser("rl", help="Stage-II RL: GRPO on a Stage-I run's action stream, rewarded by its own "
                                     "value maps", epilog="example: aim rl runs/tiny-rl --from runs/tiny --preset "
                                                          "tiny-metaworld rollout.tasks=[handle-press-v3]")
    _run_arguments(rl, "RL", "grpo.group_size=8")
    rl.add_argument("--from", dest="start", help="the Stage-I run (its latest checkpoint) or checkpoint directory "
                                                 "(required unless --resume)")
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
    demo = verbs.add_parser("demo", help="collect, train AIM and two ablations, evaluate, and write report.html "
                                         "(sized for a 2-core CPU: see benchmarks/RESULTS.md for its time; resumes)")
    demo.add_argument("out", nargs="?", default="aim-demo")
    demo.add_argument("--quick", action="store_true", help="a few-minute smoke run (tiny budgets: not a result)")
    demo.add_argument("--tasks", nargs="+", help="Meta-World tasks (default: the demo's three)")
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--rl-iterations", type=int, help="also run Stage II RL on the aim run for this many "
                      "iterations and evaluate it as aim+rl (default: none; --quick: 1)")
    demo.add_argument("--no-progress", action="store_true")
    # Train overrides may also follow its options, where argparse leaves them unparsed.
    args, extra = parser.parse_known_args(argv)
    if extra and args.verb not in ("train", "rl"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.verb == "collect":
        return _collect(args)
    if args.verb == "train":
        return _train(args, [*args.overrides, *extra])
    if args.verb == "rl":
        return _rl(args, [*args.overrides, *extra])
    if args.verb == "eval":
        return _eval(args)
    if args.verb == "demo":
        return _demo(args)

    from aim.data import DatasetFormatError

    try:
        if args.action == "info":
            print(dataset_summary(args.path))
        elif args.action == "preview":
            from PIL import Image

            from aim.data.preview import preview

            Image.fromarray(preview(args.path, args.episode, args.frame)).save(args.out)
            print(f"wrote {args.out}")
        else:
            from aim.data.robotwin import convert_robotwin

            count = convert_robotwin(args.source, args.target, fps=args.fps, mode=args.mode)
            print(f"wrote {count} episodes to {args.target}")
    except (DatasetFormatError, FileExistsError, ValueError) as err:
        print(f"aim: {err}", file=sys.stderr)
        return 1
    return 0


def _collect(args: argparse.Namespace) -> int:
    from aim.data.collect import DEFAULT_CAMERAS, CollectSettings, collect

    try:
        settings = CollectSettings(tuple(args.cameras or DEFAULT_CAMERAS), args.size, args.size, args.max_steps,
                                   args.action_space, args.frame_every, args.multisample)
    except ValueError as err:
        print(f"aim collect: {err}", file=sys.stderr)
        return 2
    report = collect(args.out, args.tasks, args.seeds, settings, workers=args.workers, progress=not args.no_progress)
    print(f"{report.written} episodes written, {report.failed} failed (dropped), {report.skipped} already present")
    return 0


def _run_arguments(parser: argparse.ArgumentParser, kind: str, example: str) -> None:
    """The arguments ``aim train`` and ``aim rl`` share: the run folder, its config, resume, overrides."""
    parser.add_argument("run_dir", help="where config, checkpoints, metrics and TensorBoard logs go (aim eval reads it)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help=f"a shipped {kind} preset, e.g. tiny-metaworld")
    source.add_argument("--config", help=f"a YAML {kind} config file")
    parser.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint "
                        "(with its saved config, then the overrides given)")
    parser.add_argument("overrides", nargs="*", help=f"config overrides section.key=value, e.g. {example}")


def _run_config(args: argparse.Namespace, load, overrides: list[str]):
    """The config of ``aim train``/``aim rl``: the run's saved config when resuming without a new
    preset or file, else ``load(preset, file, overrides)``."""
    from pathlib import Path

    from aim.train.loop import CONFIG_FILE

    saved = Path(args.run_dir) / CONFIG_FILE
    if args.resume and not (args.preset or args.config):
        if not saved.is_file():
            raise FileNotFoundError(f"{args.run_dir}: nothing to resume (no {CONFIG_FILE})")
        return load(file=saved, overrides=overrides)
    return load(args.preset, args.config, overrides)


def _train(args: argparse.Namespace, overrides: list[str]) -> int:
    from aim.data import DatasetFormatError
    from aim.train import ConfigError, NonFiniteLossError, load_config, train

    try:
        result = train(_run_config(args, load_config, overrides), args.run_dir, resume=args.resume)
    except (ConfigError, DatasetFormatError, FileExistsError, FileNotFoundError, NonFiniteLossError) as err:
        print(f"aim: {err}", file=sys.stderr)
        return 1
    print(f"trained {result.last_step} steps; latest checkpoint {result.checkpoint}")
    return 0


def _rl(args: argparse.Namespace, overrides: list[str]) -> int:
    from aim.rl.config import load_rl_config
    from aim.rl.loop import reinforce
    from aim.train import ConfigError

    if args.start:
        overrides = [f"start={args.start}", *overrides]
    try:
        result = reinforce(_run_config(args, load_rl_config, overrides), args.run_dir, resume=args.resume)
    except (ConfigError, FileExistsError, FileNotFoundError, FloatingPointError) as err:
        print(f"aim: {err}", file=sys.stderr)
        return 1
    print(f"trained {result.last_iteration} RL iterations; latest checkpoint {result.checkpoint} "
          f"(evaluate it with: aim eval {args.run_dir} ...)")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from aim.model.sampler import SamplerConfig

    sampler = SamplerConfig(args.video_steps, args.guidance, args.action_steps)
    if args.robotwin_policy:
        from aim.eval.robotwin import write_policy_folder

        folder = write_policy_folder(args.robotwin_policy, args.run_dir, sampler_config=sampler, device=args.device)
        print(f"wrote {folder}; run its eval.sh from there")
        return 0
    if not args.tasks or not args.out:
        print("aim: eval needs --tasks and --out (or --robotwin-policy)", file=sys.stderr)
        return 2
    from rich.console import Console

    from aim.eval.results import results_table, summarise, write_results
    from aim.eval.runner import EvalSettings, evaluate

    try:
        settings = EvalSettings(tuple(args.tasks), args.episodes, sampler, args.max_steps, args.seed,
                                args.videos_per_task, args.video_format, args.device)
        episodes = evaluate(args.run_dir, settings, args.out, workers=args.workers, progress=not args.no_progress)
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f"aim: {err}", file=sys.stderr)
        return 1
    results = summarise(episodes, settings, run=str(args.run_dir))
    path = write_results(f"{args.out}/results.json", results)
    Console().print(results_table(results))
    print(f"wrote {path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import dataclasses

    from rich.console import Console

    from aim.demo import DemoSettings, run_demo
    from aim.demo.pipeline import QUICK, summary_table

    settings = QUICK if args.quick else DemoSettings()
    changes = {"workers": args.workers, **({"tasks": tuple(args.tasks)} if args.tasks else {}),
               **({"rl_iterations": args.rl_iterations} if args.rl_iterations is not None else {})}
    result = run_demo(args.out, dataclasses.replace(settings, **changes), progress=not args.no_progress)
    Console().print(summary_table(result))
    print(f"wrote {result.report}: open it in a browser (the folder can be moved or zipped as it is)")
    return 0


def dataset_summary(path: str) -> str:
    """A few lines a person reads: version, size, cameras, features, tasks."""
    from aim.data import DatasetReader

    reader = DatasetReader(path)
    info = reader.info
    vectors = {k: v["shape"] for k, v in info["features"].items() if v["dtype"] != "video" and v["shape"] != [1]}
    lines = [
        (f"{reader.root}: LeRobot {info['codebase_version']}, {info['total_episodes']} episodes, "
         f"{info['total_frames']} frames at {reader.fps} fps"),
        f"cameras: {', '.join(reader.cameras)}" + (" (with value maps)" if reader.has_value_maps else ""),
        "vectors: " + ", ".join(f"{k} {v}" for k, v in vectors.items()),
        f"tasks ({len(reader.tasks)}):",
        *(f"  {i}: {text}" for i, text in sorted(reader.tasks.items())),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
