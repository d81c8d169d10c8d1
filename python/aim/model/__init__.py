"""The AIM model: configs, the mixture-of-transformers, Wan2.2 loading, flow matching, sampling.

Map (one job per module):

* ``config``          — :class:`AIMConfig`, presets
* ``parameter_counts`` — parameters per stream, counted on the meta device
* ``groups``, ``clip`` — the input: token groups (O, A, X, M, Ah) and the teacher-forcing clip
* ``embeddings``, ``rope``, ``block``, ``heads`` — the pieces of :class:`AIMTransformer`
* ``transformer``     — the model: streams, branches, one shared masked attention
* ``kv_cache``        — cached keys/values and the cached pass's attention (the block-sparse op, new rows only)
* ``wan_checkpoint``, ``action_init`` — Wan2.2 weights into the video branch; action-branch init
* ``flow_matching``   — Stage-I rectified-flow losses
* ``sampler``         — Euler + CFG, chunk-wise rollout with or without the KV cache
* ``video_tokenizers``, ``text_encoders`` — frames <-> latents, prompts -> features
"""

from aim.model.clip import ClipStructure
from aim.model.config import PRESETS, AIMConfig, preset
from aim.model.flow_matching import FlowMatchingConfig, training_loss
from aim.model.groups import StreamGroup
from aim.model.kv_cache import KVCache
from aim.model.parameter_counts import count_parameters
from aim.model.sampler import Rollout, SamplerConfig
from aim.model.transformer import AIMTransformer
from aim.model.wan_checkpoint import from_wan_pretrained

__all__ = [
    "PRESETS",
    "AIMConfig",
    "AIMTransformer",
    "ClipStructure",
    "FlowMatchingConfig",
    "KVCache",
    "Rollout",
    "SamplerConfig",
    "StreamGroup",
    "count_parameters",
    "from_wan_pretrained",
    "preset",
    "training_loss",
]
