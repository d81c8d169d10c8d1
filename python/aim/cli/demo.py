"""``aim demo [OUT]``: collect, train AIM and two ablations, evaluate, and write OUT/report.html."""

from __future__ import annotations

import argparse


def add_parsers(verbs) -> None:
    demo = verbs.add_parser("demo", help="collect, train AIM and two ablations, evaluate, and write report.html "
                                         "(sized for a 2-core CPU: see benchmarks/RESULTS.md for its time; resumes)")
    demo.add_argument("out", nargs="?", default="aim-demo")
    demo.add_argument("--quick", action="store_true", help="a few-minute smoke run (tiny budgets: not a result)")
    demo.add_argument("--tasks", nargs="+", help="Meta-World tasks (default: the demo's three)")
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--rl-iterations", type=int, help="also run Stage II RL on the aim run for this many "
                      "iterations and evaluate it as aim+rl (default: none; --quick: 1)")
    demo.add_argument("--no-progress", action="store_true")
    demo.set_defaults(run=run)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    import dataclasses

    from rich.console import Console

    from aim.demo import DemoSettings, run_demo
    from aim.demo.pipeline import summary_table
    from aim.demo.settings import QUICK

    settings = QUICK if args.quick else DemoSettings()
    changes = {"workers": args.workers, **({"tasks": tuple(args.tasks)} if args.tasks else {}),
               **({"rl_iterations": args.rl_iterations} if args.rl_iterations is not None else {})}
    result = run_demo(args.out, dataclasses.replace(settings, **changes), progress=not args.no_progress)
    Console().print(summary_table(result))
    print(f"wrote {result.report}: open it in a browser (the folder can be moved or zipped as it is)")
    return 0
