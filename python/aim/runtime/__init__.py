"""``aim.runtime``: what a trained model is and how it travels, under training, evaluation and RL.

Stage I (``aim.train``), evaluation (``aim.eval``) and Stage II (``aim.rl``) are peers on top
of this package. Map (one job per module):

* ``bundle``        — :class:`ModelBundle`: a trained model with its preprocessing; :func:`load_bundle`
* ``preprocessing`` — the contract between training and acting: canvases -> latents, actions
  normalised, text prompts, the clip's frame and action bookkeeping
* ``checkpoint``    — atomic checkpoints (torch.distributed.checkpoint + safetensors), resume
* ``run_dir``       — a run directory's config file and the start-or-resume rule
* ``distributed``   — process groups (torchrun), DDP and FSDP2 as layers over a module
* ``optim``         — AdamW and the warm-up + cosine/constant schedule, with their config sections
* ``monitor``       — TensorBoard, the metrics file, the progress bar
"""

from aim.runtime.bundle import ModelBundle, load_bundle

__all__ = ["ModelBundle", "load_bundle"]
