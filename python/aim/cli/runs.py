"""``aim train RUN ...`` (Stage I) and ``aim rl RUN --from RUN ...`` (Stage II): runs from a config.

Both take a run folder, a shipped preset or a YAML file, ``--resume``, and ``section.key=value``
overrides (also after the options, where argparse leaves them unparsed).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parsers(verbs) -> None:
    train = verbs.add_parser("train", help="Stage-I training (one process, or many under torchrun)",
                             epilog="example: aim train runs/tiny --preset tiny-metaworld data.root=DATASET "
                                    "train.steps=1000")
    _run_arguments(train, "training", "optim.lr=3e-4")
    train.set_defaults(run=train_verb)
    rl = verbs.add_parser("rl", help="Stage-II RL: GRPO on a Stage-I run's action stream, rewarded by its own "
                                     "value maps", epilog="example: aim rl runs/tiny-rl --from runs/tiny --preset "
                                                          "tiny-metaworld rollout.tasks=[handle-press-v3]")
    _run_arguments(rl, "RL", "grpo.group_size=8")
    rl.add_argument("--from", dest="start", help="the Stage-I run (its latest checkpoint) or checkpoint directory "
                                                 "(required unless --resume)")
    rl.set_defaults(run=rl_verb)


def train_verb(args: argparse.Namespace, extra: list[str]) -> int:
    import torch

    from aim.process_settings import retain_freed_memory
    from aim.train import load_config, train

    config = _run_config(args, load_config, [*args.overrides, *extra])
    if config.train.device == "cpu" or (config.train.device == "auto" and not torch.cuda.is_available()):
        retain_freed_memory()
    result = train(config, args.run_dir, resume=args.resume)
    print(f"trained {result.last_step} steps; latest checkpoint {result.checkpoint}")
    return 0


def rl_verb(args: argparse.Namespace, extra: list[str]) -> int:
    from aim.rl.config import load_rl_config
    from aim.rl.loop import reinforce

    overrides = [*([f"start={args.start}"] if args.start else []), *args.overrides, *extra]
    result = reinforce(_run_config(args, load_rl_config, overrides), args.run_dir, resume=args.resume)
    print(f"trained {result.last_iteration} RL iterations; latest checkpoint {result.checkpoint} "
          f"(evaluate it with: aim eval {args.run_dir} ...)")
    return 0


def _run_arguments(parser: argparse.ArgumentParser, kind: str, example: str) -> None:
    """The run folder, its config, resume, overrides."""
    parser.add_argument("run_dir", help="where config, checkpoints, metrics and TensorBoard logs go (aim eval reads it)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help=f"a shipped {kind} preset, e.g. tiny-metaworld")
    source.add_argument("--config", help=f"a YAML {kind} config file")
    parser.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint "
                        "(with its saved config, then the overrides given)")
    parser.add_argument("overrides", nargs="*", help=f"config overrides section.key=value, e.g. {example}")
    parser.set_defaults(takes_overrides=True)


def _run_config(args: argparse.Namespace, load, overrides: list[str]):
    """The run's saved config when resuming without a new preset or file, else ``load(preset, file, overrides)``."""
    from aim.errors import NotFoundError
    from aim.runtime.run_dir import CONFIG_FILE

    saved = Path(args.run_dir) / CONFIG_FILE
    if args.resume and not (args.preset or args.config):
        if not saved.is_file():
            raise NotFoundError(f"{args.run_dir}: nothing to resume (no {CONFIG_FILE})")
        return load(file=saved, overrides=overrides)
    return load(args.preset, args.config, overrides)
