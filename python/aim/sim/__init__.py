"""``aim.sim``: simulated manipulation environments with calibrated cameras, and expert data from them
(the data source of docs/method.md §4).

* :class:`Environment`: the interface (seeded reset, step, multi-view render, per-frame camera
  intrinsics/extrinsics, end-effector pose, contacts, success).
* ``aim.sim.metaworld_env.MetaWorldEnv``: Meta-World on MuJoCo, CPU rendering through EGL
  (imported on use: it needs the ``sim`` extra).
* ``aim.sim.contact_events``: interaction events from contacts (``aim.data.value_map_labels``
  draws them as value-map labels).
* ``aim.sim.collect``: scripted Meta-World experts rolled out into a labelled dataset.
"""

from aim.sim.environment import Contact, Environment, StepResult

__all__ = ["Contact", "Environment", "StepResult"]
