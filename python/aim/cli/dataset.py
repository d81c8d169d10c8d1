"""``aim dataset info|preview|convert-robotwin``: inspect a LeRobot v3.0 dataset, convert RoboTwin episodes."""

from __future__ import annotations

import argparse


def add_parsers(verbs) -> None:
    dataset = verbs.add_parser("dataset", help="inspect and convert datasets").add_subparsers(dest="action",
                                                                                              required=True)
    info = dataset.add_parser("info", help="summarise a LeRobot v3.0 dataset")
    info.add_argument("path")
    info.set_defaults(run=info_verb)
    show = dataset.add_parser("preview", help="write a PNG of one frame's views with their value maps overlaid")
    show.add_argument("path")
    show.add_argument("--episode", type=int, default=0)
    show.add_argument("--frame", type=int, default=0)
    show.add_argument("--out", required=True)
    show.set_defaults(run=preview_verb)
    convert = dataset.add_parser("convert-robotwin", help="convert RoboTwin 2.0 HDF5 episodes (a <task>/<config> folder)")
    convert.add_argument("source")
    convert.add_argument("target")
    convert.add_argument("--fps", type=int, required=True, help="recording rate of the RoboTwin episodes")
    convert.add_argument("--mode", choices=("create", "overwrite", "append"), default="create",
                         help="create a new dataset, overwrite one, or append: continue an interrupted conversion "
                              "(episodes already converted are skipped)")
    convert.add_argument("--action-space", choices=("qpos", "ee"), default="qpos",
                         help="qpos: joints and grippers (joint_action/vector); ee: per arm x, y, z, qw, qx, qy, qz, "
                              "gripper from endpose (what take_action(..., action_type='ee') takes)")
    convert.add_argument("--relative-ee", action="store_true",
                         help="ee poses relative to the episode's first pose (evaluation adds it back)")
    convert.add_argument("--no-value-maps", action="store_true", help="write no value maps (the model then needs "
                         "model.value_stream=false)")
    convert.add_argument("--tcp-offset", type=float, default=0.0, metavar="METRES",
                         help="grasp point ahead of the end pose along its x axis (aloha-agilex: 0.12 puts it "
                              "between the fingers; default 0: the end pose itself)")
    convert.add_argument("--fallback", choices=("reach", "empty"), default="reach",
                         help="value maps of episodes without a gripper event: at the farthest reach of each arm "
                              "that moved (default), or empty")
    convert.add_argument("--no-progress", action="store_true")
    convert.set_defaults(run=convert_robotwin_verb)


def info_verb(args: argparse.Namespace, extra: list[str]) -> int:
    print(dataset_summary(args.path))
    return 0


def preview_verb(args: argparse.Namespace, extra: list[str]) -> int:
    from PIL import Image

    from aim.data.preview import preview

    Image.fromarray(preview(args.path, args.episode, args.frame)).save(args.out)
    print(f"wrote {args.out}")
    return 0


def convert_robotwin_verb(args: argparse.Namespace, extra: list[str]) -> int:
    from aim.data.gripper_events import GripperEventSettings
    from aim.data.robotwin import RoboTwinSettings, convert_robotwin

    settings = RoboTwinSettings(action_space=args.action_space, relative_ee=args.relative_ee,
                                value_maps=not args.no_value_maps,
                                events=GripperEventSettings(tcp_offset=args.tcp_offset, fallback=args.fallback))
    report = convert_robotwin(args.source, args.target, fps=args.fps, settings=settings, mode=args.mode,
                              progress=not args.no_progress)
    print(f"{report.summary()} to {args.target}")
    return 0


def dataset_summary(path: str) -> str:
    """A few lines a person reads: version, size, cameras, features, actions, tasks."""
    from aim.data import DatasetReader
    from aim.data.lerobot_format import action_space

    reader = DatasetReader(path)
    info = reader.info
    vectors = {k: v["shape"] for k, v in info["features"].items() if v["dtype"] != "video" and v["shape"] != [1]}
    lines = [
        (f"{reader.root}: LeRobot {info['codebase_version']}, {info['total_episodes']} episodes, "
         f"{info['total_frames']} frames at {reader.fps} fps"),
        f"cameras: {', '.join(reader.cameras)}" + (" (with value maps)" if reader.has_value_maps else "")
        + ("" if reader.has_calibration else " (no calibration)"),
        "vectors: " + ", ".join(f"{k} {v}" for k, v in vectors.items()),
        *([f"actions: {_action_space_words(space)}"] if (space := action_space(info)) else []),
        f"tasks ({len(reader.tasks)}):",
        *(f"  {i}: {text}" for i, text in sorted(reader.tasks.items())),
    ]
    return "\n".join(lines)


def _action_space_words(space: dict) -> str:
    words = {"qpos": "joint positions and grippers (qpos)", "ee": "end-effector poses and grippers (ee)"}
    frame = {"first_pose": ", relative to each episode's first pose", "world": ", in the world frame"}
    return words.get(space.get("kind"), str(space)) + frame.get(space.get("frame"), "")
