"""The ``aim`` command line: LeRobot-style verbs, one module each (``aim.cli.<verb>``).

``aim dataset info|preview|convert-robotwin``, ``aim collect OUT ...``, ``aim train RUN ...``,
``aim rl RUN --from RUN ...``, ``aim eval RUN ...``, ``aim demo [OUT]``.

One rule for errors: a problem aim can explain (:class:`aim.errors.AimError`) prints one line,
``aim <verb>: <message>``, and exits with its code: 2 for a bad argument or setting, 1 for a run
that failed on its data, files or numbers; an interrupt exits with 130. ``--debug`` (or
``AIM_DEBUG=1``) shows the traceback instead. The command is the entry point, so it makes the
process-wide choices (MuJoCo's offscreen renderer) before any verb runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from aim.cli import collect, dataset, demo, evaluate, runs
from aim.errors import AimError
from aim.process_settings import use_offscreen_rendering

VERBS = (dataset, collect, runs, evaluate, demo)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``aim``; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="aim", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (also AIM_DEBUG=1)")
    verbs = parser.add_subparsers(dest="verb", required=True)
    for verb in VERBS:
        verb.add_parsers(verbs)
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    use_offscreen_rendering()
    try:
        return args.run(args, extra)
    except (AimError, KeyboardInterrupt) as err:
        if args.debug or os.environ.get("AIM_DEBUG") == "1":
            raise
        if isinstance(err, KeyboardInterrupt):
            print(f"aim {args.verb}: interrupted", file=sys.stderr)
            return 130
        print(f"aim {args.verb}: {err}", file=sys.stderr)
        return err.exit_code
