"""The registered ops (``torch.ops.aim.*``) are public: called directly, with anything, they refuse
bad input by name before a kernel reads it, and the softmax scale must be finite and positive."""

import math

import pytest
import torch

from aim.errors import UsageError
from aim.ops import AttentionLayout, attention

FWD = "torch.ops.aim.block_sparse_attention_fwd"
BWD = "torch.ops.aim.block_sparse_attention_bwd"
TOKENS, HEAD_DIM, SCALE = 200, 32, 0.125


def _replaced(tensors, index, value):
    changed = list(tensors)
    changed[index] = value
    return changed


def _fwd(q, k, v, layout, scale=SCALE):
    return torch.ops.aim.block_sparse_attention_fwd(q, k, v, *layout, scale)


def _bwd(dout, q, k, v, out, lse, layout, scale=SCALE):
    return torch.ops.aim.block_sparse_attention_bwd(dout, q, k, v, out, lse, *layout, scale)


def _q_idx_out_of_range(tensors):
    q_idx = tensors[1].clone()
    q_idx[0] = 10_000
    return _replaced(tensors, 1, q_idx)


ATTENTION_CASES = {
    "k shorter than q": (lambda q, k, v, T: _fwd(q, k[:, :, :-1], v, T), f"{FWD}: q, k, v shapes differ"),
    "float64": (lambda q, k, v, T: _fwd(q.double(), k.double(), v.double(), T), "unsupported dtype torch.float64"),
    "mixed dtypes": (lambda q, k, v, T: _fwd(q, k.half(), v, T), "dtypes differ"),
    "3-d q": (lambda q, k, v, T: _fwd(q[0], k[0], v[0], T), r"must be \(batch, heads, tokens, head_dim\)"),
    "head_dim the kernel lacks": (lambda q, k, v, T: _fwd(*(torch.randn(1, 1, TOKENS, 300) for _ in range(3)), T),
                                  "takes head_dim 1..256, not 300"),
    "int64 layout": (lambda q, k, v, T: _fwd(q, k, v, _replaced(T, 0, T[0].long())), "q_ptr must be int32"),
    "index out of range": (lambda q, k, v, T: _fwd(q, k, v, _q_idx_out_of_range(T)), "q_idx holds block 10000"),
    "unsorted lists": (lambda q, k, v, T: _fwd(q, k, v, _replaced(T, 1, T[1].flip(0).contiguous())),
                       "strictly ascending"),
    "layout of another length": (lambda q, k, v, T: _fwd(q, k, v, _other_layout()), "a layout built for other"),
    "scale nan": (lambda q, k, v, T: _fwd(q, k, v, T, float("nan")), "scale must be finite and > 0, got nan"),
    "scale 0": (lambda q, k, v, T: _fwd(q, k, v, T, 0.0), "scale must be finite and > 0, got 0.0"),
    "scale inf": (lambda q, k, v, T: _fwd(q, k, v, T, math.inf), "scale must be finite and > 0, got inf"),
}


def _other_layout():
    return AttentionLayout.from_mask(torch.rand(300, 300) < 0.5).tensors()


@pytest.fixture
def case():
    layout = AttentionLayout.from_mask(torch.rand(TOKENS, TOKENS) < 0.5)
    q, k, v = (torch.randn(2, 3, TOKENS, HEAD_DIM) for _ in range(3))
    return q, k, v, layout


@pytest.mark.parametrize("name", ATTENTION_CASES)
def test_registered_attention_forward_refuses_bad_input(case, name):
    q, k, v, layout = case
    make, message = ATTENTION_CASES[name]
    with pytest.raises(UsageError, match=message):
        make(q, k, v, layout.tensors())


def test_registered_attention_forward_takes_what_it_refuses_nothing_of(case):
    q, k, v, layout = case
    out, lse = _fwd(q, k, v, layout.tensors())
    assert torch.isfinite(out).all() and torch.isfinite(lse[lse > -math.inf]).all()
    assert torch.equal(out, attention(q, k, v, layout, scale=SCALE))


@pytest.mark.parametrize("name,make,message", [
    ("lse of the wrong shape", lambda d, q, k, v, o, lse, T: _bwd(d, q, k, v, o, lse[:, :1], T),
     "lse must be the forward's float32"),
    ("lse of the wrong dtype", lambda d, q, k, v, o, lse, T: _bwd(d, q, k, v, o, lse.double(), T),
     "lse must be the forward's float32"),
    ("dout of another dtype", lambda d, q, k, v, o, lse, T: _bwd(d.half(), q, k, v, o, lse, T), "dout must be like q"),
    ("out of another shape", lambda d, q, k, v, o, lse, T: _bwd(d, q, k, v, o[:, :1], lse, T), "out must be like q"),
    ("scale nan", lambda d, q, k, v, o, lse, T: _bwd(d, q, k, v, o, lse, T, float("nan")), "scale must be finite"),
    ("scale negative", lambda d, q, k, v, o, lse, T: _bwd(d, q, k, v, o, lse, T, -SCALE), "scale must be finite"),
])
def test_registered_attention_backward_refuses_bad_input(case, name, make, message):
    q, k, v, layout = case
    out, lse = _fwd(q, k, v, layout.tensors())
    with pytest.raises(UsageError, match=f"^{BWD}: {message}"):
        make(torch.randn_like(out), q, k, v, out, lse, layout.tensors())


@pytest.mark.parametrize("scale", [float("nan"), 0.0, -0.5, math.inf, -math.inf])
def test_attention_refuses_a_scale_that_is_not_finite_and_positive(case, scale):
    q, k, v, layout = case
    with pytest.raises(UsageError, match=f"^aim.ops.attention: scale must be finite and > 0, got {scale}"):
        attention(q, k, v, layout, scale=scale)


@pytest.mark.parametrize("scale", [True, "0.1", torch.tensor(0.1)])
def test_attention_refuses_a_scale_that_is_not_a_real_number(case, scale):
    q, k, v, layout = case
    with pytest.raises(UsageError, match="scale must be a real number"):
        attention(q, k, v, layout, scale=scale)


def _value_map_scene(frames=2, points=3):
    points_ = torch.randn(1, frames, points, 3)
    points_[..., 2] += 2.0
    mask = torch.ones(1, frames, points, dtype=torch.bool)
    k = torch.tensor([[[20.0, 0, 8], [0, 20, 8], [0, 0, 1]]]).expand(1, 1, 3, 3).contiguous()
    e = torch.eye(4).expand(1, frames, 1, 4, 4).contiguous()
    return points_, mask, k, e


def _render_op(p, m, k, e, **changes):
    args = dict(height=16, width=16, r_world=0.05, sigma_min=1.0, sigma_max=4.0, combine="max") | changes
    return torch.ops.aim.render_value_maps(p, m, k, e, *args.values())


VALUE_MAP_CASES = {
    "render: views differ": (lambda M, p, m, k, e: _render_op(p, m, k.expand(1, 2, 3, 3).contiguous(), e),
                             r"render_value_maps: views \(V\) differs"),
    "render: unknown combine": (lambda M, p, m, k, e: _render_op(p, m, k, e, combine="mean"),
                                "render_value_maps: combine must be one of"),
    "render: r_world nan": (lambda M, p, m, k, e: _render_op(p, m, k, e, r_world=float("nan")),
                            "render_value_maps: r_world must be finite"),
    "render: mask not bool": (lambda M, p, m, k, e: _render_op(p, m.float(), k, e),
                              "render_value_maps: point_mask must be bool"),
    "sample: frames differ": (lambda M, p, m, k, e: torch.ops.aim.sample_value_maps(M[:, :1], p, k, e, None),
                              r"sample_value_maps: frames \(T\) differs"),
    "sample: dtypes differ": (lambda M, p, m, k, e: torch.ops.aim.sample_value_maps(M, p.double(), k, e, None),
                              "sample_value_maps: value_maps and points dtypes differ"),
}


@pytest.mark.parametrize("name", VALUE_MAP_CASES)
def test_registered_value_map_ops_refuse_bad_input(name):
    points, mask, k, e = _value_map_scene()
    maps = torch.rand(1, 2, 1, 16, 16)
    make, message = VALUE_MAP_CASES[name]
    with pytest.raises(UsageError, match=f"^torch.ops.aim.{message}"):
        make(maps, points, mask, k, e)
