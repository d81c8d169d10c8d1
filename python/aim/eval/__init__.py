"""``aim.eval``: closed-loop evaluation of trained models (docs/method.md §7), and the RoboTwin 2.0 adapter.

Map (one job per module):

* ``policy``      — :class:`AIMPolicy`: a ModelBundle acting chunk by chunk through the KV-cached rollout
* ``observation`` — :class:`Observation` (views + calibration) and its training-identical canvas
* ``suite``, ``metaworld_suite`` — what a simulator benchmark supplies; Meta-World's
* ``episode``     — one closed-loop episode (and its rollout video)
* ``runner``      — many tasks and held-out seeds (``seeds``) in parallel workers (``workers``: a
  process pool that raises a worker's start error instead of hanging; Stage II uses it too)
* ``statistics``, ``results`` — Wilson intervals, latency quantiles, results JSON and table
* ``overlay``, ``videos`` — predicted value maps and end-effector targets drawn on the frames; GIF/MP4
* ``robotwin``    — RoboTwin's deploy-policy functions and the ``policy/AIM`` folder writer

Meta-World pieces (``metaworld_suite``) need the ``sim`` extra and are imported on use.
"""

from aim.eval.episode import EpisodeResult, run_episode
from aim.eval.observation import Observation
from aim.eval.policy import AIMPolicy, Chunk
from aim.eval.runner import EvalSettings, evaluate
from aim.eval.seeds import EVAL_SEED_OFFSET, eval_seeds
from aim.eval.statistics import wilson_interval

__all__ = ["EVAL_SEED_OFFSET", "AIMPolicy", "Chunk", "EpisodeResult", "EvalSettings", "Observation", "eval_seeds",
           "evaluate", "run_episode", "wilson_interval"]
