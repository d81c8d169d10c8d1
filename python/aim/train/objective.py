"""The module the training step calls: the transformer and its trained text encoder, returning the
Stage-I losses (docs/method.md §6).

Data parallelism wraps this one module, so everything with trained weights must be used inside
its ``forward``: FSDP2 gathers the root unit's parameters (embeddings, heads, the per-task text
embedding) around it, and DDP reduces the gradients of all of them. The video tokenizer is frozen
and runs before, in aim.runtime.preprocessing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from aim.model import AIMTransformer, ClipStructure, FlowMatchingConfig, training_loss
from aim.model.text_encoders import TextEncoder
from aim.runtime.preprocessing import encode_text

Tensor = torch.Tensor


class StageOneObjective(nn.Module):
    def __init__(self, model: AIMTransformer, text_encoder: TextEncoder, structure: ClipStructure,
                 loss: FlowMatchingConfig) -> None:
        super().__init__()
        self.model = model
        # An nn.Module text encoder (the per-task embedding) is registered and trained; a frozen
        # one (umT5) is a plain attribute, outside the state dict.
        self.text_encoder = text_encoder
        self.structure, self.loss = structure, loss

    def forward(self, video: Tensor, value: Tensor | None, actions: Tensor, prompts: Sequence[str],
                generator: torch.Generator) -> dict[str, Tensor]:
        """training_loss's dict (``loss``, ``video``, ``value``, ``action``) for one micro-batch;
        ``prompts`` are what the text encoder reads (aim.runtime.preprocessing.text_prompts)."""
        text = encode_text(self.text_encoder, prompts, video.device)
        return training_loss(self.model, self.structure, video, value, actions, text, self.loss, generator)
