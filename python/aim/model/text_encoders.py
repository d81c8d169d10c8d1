"""Text conditioning behind one interface: prompts -> (B, L, text_dim) features.

:class:`UMT5TextEncoder` is Wan's umT5-XXL encoder (transformers, local weights): padded to a
fixed length with features zeroed after each prompt's last token, as Wan's pipeline feeds them.
:class:`TaskEmbedding` is a learned per-task embedding for tiny configs with a fixed task list.
:class:`CachedTextEncoder` stores computed features in memory and, optionally, on disk, since
the instructions of a dataset are few and the encoder is large.
"""

from __future__ import annotations

import abc
import hashlib
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

Tensor = torch.Tensor


class TextEncoder(abc.ABC):
    dim: int

    @abc.abstractmethod
    def encode(self, prompts: Sequence[str]) -> Tensor:
        """(B, L, dim) features of B prompts (L fixed per encoder)."""


class TaskEmbedding(nn.Module, TextEncoder):
    """``tokens`` learned vectors per task; a prompt must be one of ``tasks``.

    ``keyed_by`` says what the prompts are: task ids ("task", e.g. "pick-place-v3"), so every
    paraphrase of a task's instruction conditions alike, or, in models trained by aim before task
    ids were recorded, the instruction texts themselves ("instruction").
    """

    KEYS = ("task", "instruction")

    def __init__(self, tasks: Sequence[str], dim: int, tokens: int = 4, keyed_by: str = "task"):
        super().__init__()
        if keyed_by not in self.KEYS:
            raise ValueError(f"TaskEmbedding: keyed_by must be one of {list(self.KEYS)}, got {keyed_by!r}")
        self.tasks = {task: i for i, task in enumerate(tasks)}
        self.dim, self.tokens, self.keyed_by = dim, tokens, keyed_by
        self.embedding = nn.Embedding(len(self.tasks), tokens * dim)

    def encode(self, prompts: Sequence[str]) -> Tensor:
        unknown = [p for p in prompts if p not in self.tasks]
        if unknown:
            raise KeyError(f"TaskEmbedding: unknown tasks {unknown}; known: {sorted(self.tasks)}")
        index = torch.tensor([self.tasks[p] for p in prompts], device=self.embedding.weight.device)
        return self.embedding(index).unflatten(-1, (self.tokens, self.dim))


class UMT5TextEncoder(TextEncoder):
    """umT5 encoder from local folders (``encoder_path``, and ``tokenizer_path`` when the
    tokenizer is stored apart, as in a diffusers Wan pipeline: ``text_encoder/``, ``tokenizer/``)."""

    def __init__(self, encoder_path: str | Path, tokenizer_path: str | Path | None = None, max_length: int = 512,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
        from transformers import AutoTokenizer, UMT5EncoderModel

        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path or encoder_path))
        self.model = UMT5EncoderModel.from_pretrained(str(encoder_path), torch_dtype=dtype).to(device).eval()
        self.dim = self.model.config.d_model
        self.max_length = max_length

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> Tensor:
        tokens = self.tokenizer(list(prompts), padding="max_length", max_length=self.max_length, truncation=True,
                                return_tensors="pt").to(self.model.device)
        features = self.model(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask).last_hidden_state
        return features * tokens.attention_mask[..., None].to(features.dtype)


class CachedTextEncoder(TextEncoder):
    """Memoises ``encoder`` per prompt; with ``cache_dir``, features persist as safetensors files
    named by the prompt's SHA-256 (and the encoder's ``name``, so encoders never mix)."""

    def __init__(self, encoder: TextEncoder, cache_dir: str | Path | None = None, name: str = "text"):
        self.encoder, self.name = encoder, name
        self.dim = encoder.dim
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.memory: dict[str, Tensor] = {}

    def encode(self, prompts: Sequence[str]) -> Tensor:
        missing = [p for p in dict.fromkeys(prompts) if p not in self.memory and not self._load(p)]
        if missing:
            for prompt, features in zip(missing, self.encoder.encode(missing)):
                self.memory[prompt] = features.detach().cpu()
                self._store(prompt)
        return torch.stack([self.memory[p] for p in prompts])

    def _file(self, prompt: str) -> Path:
        digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
        return self.cache_dir / f"{self.name}-{digest}.safetensors"

    def _load(self, prompt: str) -> bool:
        if self.cache_dir is None or not self._file(prompt).is_file():
            return False
        from safetensors.torch import load_file

        self.memory[prompt] = load_file(str(self._file(prompt)))["features"]
        return True

    def _store(self, prompt: str) -> None:
        if self.cache_dir is None:
            return
        from safetensors.torch import save_file

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        save_file({"features": self.memory[prompt].contiguous()}, str(self._file(prompt)))
