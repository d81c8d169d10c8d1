"""Imagined vs true future, chunk by chunk: each chunk is imagined from the true history before
it (and only that), the true rows are the clip's own frames, and the figure lays them out."""

import dataclasses

import numpy as np
import torch

from aim.data.picture_grid import grid_boxes, scale_to, upscale
from aim.model.sampler import Rollout, SamplerConfig
from aim.runtime.preprocessing import decode_latents, encode_text
from aim.train.samples import FIGURE_VIEW_PIXELS, chunk_figure, imagine_chunks, predicted_vs_true

from tests.eval.helpers import tiny_bundle

CHUNKS = 3  # one more than the training clip: the rollout slides its window, as in evaluation


def _clip(bundle, chunks=CHUNKS):
    s = bundle.structure
    channels, (h, w) = bundle.tokenizer.latent_channels, (bundle.layout.height // 2, bundle.layout.width // 2)
    video = torch.randn(1, channels, s.observation_frames + chunks * s.frames_per_chunk, h, w)
    value = torch.randn(1, channels, chunks * s.frames_per_chunk, h, w) if bundle.model.config.value_stream else None
    actions = torch.randn(1, chunks * s.actions_per_chunk, bundle.model.config.action_channels)
    text = encode_text(bundle.text_encoder, ["reach"], "cpu")
    return video, value, actions, text


def _canvases(bundle, latents):
    return np.rint(decode_latents(bundle.tokenizer, latents)[0].permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)


def test_each_chunk_is_imagined_from_the_true_history_before_it():
    bundle = tiny_bundle()
    s = bundle.structure
    video, value, actions, text = _clip(bundle)
    imagined = imagine_chunks(bundle, video, value, actions, text, 2, torch.Generator().manual_seed(5))
    per_chunk = s.frames_per_chunk  # the pixel tokenizer has no temporal compression
    assert imagined.true_frames.shape == (CHUNKS, per_chunk, bundle.layout.height, bundle.layout.width, 3)
    assert imagined.imagined_heat.shape == (CHUNKS, per_chunk, bundle.layout.height, bundle.layout.width)
    true = _canvases(bundle, video[:, :, s.observation_frames:])
    np.testing.assert_array_equal(imagined.true_frames.reshape(true.shape), true)
    # Chunk 0 is what a rollout that saw the first observation imagines, with the same noise.
    rollout = Rollout(bundle.model, s, text, SamplerConfig(2, 1.0, 2))
    rollout.observe(video[:, :, :s.observation_frames])
    first, _, _ = rollout.predict_chunk(torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(imagined.imagined_frames[0], _canvases(bundle, first))
    # Changing chunk 0's true frames changes what chunk 1 is imagined from, never chunk 0 itself.
    changed = video.clone()
    changed[:, :, s.chunk_start(0):s.chunk_start(1)] += 1.0
    other = imagine_chunks(bundle, changed, value, actions, text, 2, torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(other.imagined_frames[0], imagined.imagined_frames[0])
    assert not np.array_equal(other.imagined_frames[1], imagined.imagined_frames[1])
    # Frames at every frame_stride-th step after the observation's one frame.
    stride = bundle.frame_stride
    assert imagined.steps == [[(1 + c * per_chunk + j) * stride for j in range(per_chunk)] for c in range(CHUNKS)]


def test_the_figure_labels_rows_and_chunks_and_upscales_by_whole_pixels():
    bundle = tiny_bundle()
    imagined = imagine_chunks(bundle, *_clip(bundle), 1, torch.Generator().manual_seed(0))
    figure = chunk_figure(imagined, "title")
    factor = scale_to(FIGURE_VIEW_PIXELS, bundle.layout.width)
    cell = upscale(imagined.true_frames[0, 0], factor)
    cells = [[cell] * (CHUNKS * bundle.structure.frames_per_chunk)] * 4
    width, height, boxes = grid_boxes(cells, ["true frame", "imagined frame", "true value map", "imagined value map"],
                                      ["chunk 0 · step 2"] * len(cells[0]), "title")
    assert figure.shape == (height, width, 3) and cell.shape[1] >= FIGURE_VIEW_PIXELS
    top, left = boxes[0][0]
    np.testing.assert_array_equal(figure[top:top + cell.shape[0], left:left + cell.shape[1]], cell)
    top, left = boxes[1][-1]
    last = upscale(imagined.imagined_frames[-1, -1], factor)
    np.testing.assert_array_equal(figure[top:top + cell.shape[0], left:left + cell.shape[1]], last)

    # Training's sample image: the same figure of the training clip, as a (3, H, W) image in [0, 1].
    plain = dataclasses.replace(bundle, model=tiny_bundle(value_stream=False).model)
    image = predicted_vs_true(plain, *_clip(plain, bundle.structure.num_chunks), 1, torch.Generator().manual_seed(0))
    assert image.shape[0] == 3 and 0.0 <= image.min() and image.max() <= 1.0
    assert image.shape[1] < figure.shape[0]  # two rows without a value stream, not four
