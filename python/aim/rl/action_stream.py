"""Which parameters Stage II trains: the action stream only (docs/method.md §6), everything else frozen.

The action stream is every block's action branch, the action embedding, the action timestep
embedding and the action head (``aim.model.transformer`` names). Video and value weights, the text
projection and the tokenizers stay as Stage I left them, so the model that rewards the actions
(its own value maps) does not move while they are trained.
"""

from __future__ import annotations

import re

from torch import nn

_ACTION_STREAM = re.compile(r"(blocks\.\d+\.branches\.action|action_embedding|time_embeddings\.action|heads\.action)\.")


def is_action_stream(name: str) -> bool:
    """Whether the parameter called ``name`` (as in ``model.named_parameters()``) is the action stream's."""
    return _ACTION_STREAM.match(name) is not None


def freeze_all_but_action_stream(model: nn.Module) -> list[nn.Parameter]:
    """Sets ``requires_grad`` on the action stream only and returns its parameters."""
    trainable = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(is_action_stream(name))
        if parameter.requires_grad:
            trainable.append(parameter)
    if not trainable:
        raise ValueError(f"{type(model).__name__} has no action-stream parameters (blocks.*.branches.action.*, "
                         "action_embedding.*, time_embeddings.action.*, heads.action.*)")
    return trainable
