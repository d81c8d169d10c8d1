"""``aim demo``: the whole pipeline on a CPU in one command, with a report a person can read.

* ``settings`` — what the demo does (tasks, variants, budgets) and where each stage writes
* ``stages``   — which settings made each stage's outputs, so a resumed demo reuses only matching ones
* ``pipeline`` — collect expert data, train the tiny model and its ablations, evaluate in closed loop
* ``figures``  — loss curves and predicted-vs-true pictures (PNG)
* ``report``   — the HTML report tying the figures, success table and rollout GIFs together
"""

from aim.demo.pipeline import run_demo
from aim.demo.settings import DEMO_TASKS, VARIANTS, DemoSettings

__all__ = ["DEMO_TASKS", "VARIANTS", "DemoSettings", "run_demo"]
