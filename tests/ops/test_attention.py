"""aim.ops.attention against its float64 twin: values, gradients, masking, errors, compile."""

import pytest
import torch

from aim.errors import UsageError
from aim.ops import AttentionLayout, TokenSequence, attention, causal
from aim.ops._native import DTYPE_CODES, bhnd, layout_args, native_module
from aim.ops.reference import attention_reference

from ..conftest import DEVICES

# ||op - ref|| / ||ref|| bounds against the float64 reference on the same (rounded) inputs.
TOLERANCE = {torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 2e-2}
DTYPES = {"cpu": [torch.float32, torch.float16, torch.bfloat16], "cuda": [torch.float16, torch.bfloat16]}


def rel_err(x: torch.Tensor, ref: torch.Tensor) -> float:
    assert torch.isfinite(x).all(), "non-finite values in the op's result"
    return ((x.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30)).item()


def aim_layout(samples=1, chunks=2, scale=1):
    seq = TokenSequence.teacher_forcing_clip(chunks, 37 * scale, 9 * scale, 70 * scale, 70 * scale, 16 * scale, samples)
    return AttentionLayout.from_tokens(seq), seq


def random_layout(n, density):
    return AttentionLayout.from_mask(torch.rand(n, n) < density)


LAYOUTS = {
    "aim-ragged": lambda: aim_layout(samples=2)[0],  # 2 packed samples, lengths not multiples of 128
    "aim-large": lambda: aim_layout(chunks=3, scale=4)[0],  # full, partial and empty blocks
    "random": lambda: random_layout(333, 0.4),
    "causal-packed": lambda: AttentionLayout.from_tokens(TokenSequence.packed([130, 64, 250]), rule=causal),
}


def qkv(layout, device, dtype, batch=2, heads=3, head_dim=64, requires_grad=False):
    shape = (batch, heads, layout.num_tokens, head_dim)
    return [torch.randn(shape, device=device, dtype=dtype).requires_grad_(requires_grad) for _ in range(3)]


def devices_and_dtypes():
    return [(d, t) for d in DEVICES for t in DTYPES[d]]


@pytest.mark.parametrize("device,dtype", devices_and_dtypes())
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("layout_name", list(LAYOUTS))
def test_forward_and_gradients_match_float64_reference(device, dtype, head_dim, layout_name):
    layout = LAYOUTS[layout_name]()
    q, k, v = qkv(layout, device, dtype, head_dim=head_dim, requires_grad=True)
    mask = layout.to_dense().to(device)
    out, lse = torch.ops.aim.block_sparse_attention_fwd(q, k, v, *layout.to(device).tensors(), head_dim**-0.5)
    dout = torch.randn_like(out)
    out.backward(dout)

    ref_inputs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref_out, ref_lse = attention_reference(*ref_inputs, mask)
    ref_out.backward(dout.double())

    tol = TOLERANCE[dtype]
    assert out.dtype == dtype and out.shape == q.shape
    assert rel_err(out, ref_out) < tol
    finite = torch.isfinite(ref_lse)
    assert torch.equal(torch.isfinite(lse), finite)
    assert rel_err(lse[finite], ref_lse[finite]) < tol / 4
    for name, t, r in zip("qkv", (q, k, v), ref_inputs):
        assert rel_err(t.grad, r.grad) < 2 * tol, f"d{name}"


@pytest.mark.parametrize("device", DEVICES)
def test_rows_without_visible_keys_give_zeros(device):
    dtype = DTYPES[device][-1]
    mask = torch.rand(200, 200) < 0.5
    mask[17] = False
    mask[150:170] = False
    mask[:, 0:40] = False  # keys nobody sees: their gradients are zero
    layout = AttentionLayout.from_mask(mask)
    q, k, v = qkv(layout, device, dtype, requires_grad=True)
    out, lse = torch.ops.aim.block_sparse_attention_fwd(q, k, v, *layout.to(device).tensors(), 0.125)
    out.backward(torch.randn_like(out))
    assert (out[:, :, 17] == 0).all() and (out[:, :, 150:170] == 0).all()
    assert torch.isinf(lse[:, :, 17]).all() and (lse[:, :, 17] < 0).all()
    assert (q.grad[:, :, 150:170] == 0).all()
    assert (k.grad[:, :, :40] == 0).all() and (v.grad[:, :, :40] == 0).all()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


@pytest.mark.parametrize("device", DEVICES)
def test_changing_invisible_tokens_changes_nothing(device):
    layout, seq = aim_layout(samples=2, chunks=3)
    kind, chunk, sample = seq.meta.kind, seq.meta.chunk, seq.meta.sample
    dtype = DTYPES[device][0]
    q, k, v = qkv(layout, device, dtype)
    out = attention(q, k, v, layout)
    # Future actions must not see the predicted video: perturb every video token's keys/values.
    video = (kind == 2).to(device)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, video] = torch.randn_like(k2[:, :, video]) * 10
    v2[:, :, video] = torch.randn_like(v2[:, :, video]) * 10
    out2 = attention(q, k2, v2, layout)
    actions = (kind == 4).to(device)
    assert torch.equal(out[:, :, actions], out2[:, :, actions])
    assert not torch.equal(out[:, :, video], out2[:, :, video])
    # Samples never see each other: perturb sample 1 entirely; sample 0 is unchanged.
    other = (sample == 1).to(device)
    k3, v3 = k.clone(), v.clone()
    k3[:, :, other] += 5
    v3[:, :, other] -= 5
    out3 = attention(q, k3, v3, layout)
    assert torch.equal(out[:, :, ~other], out3[:, :, ~other])
    # A query's output is untouched by keys of later chunks (within its own sample).
    later = ((chunk == 2) & (sample == 0)).to(device)
    earlier = ((chunk == 0) & (sample == 0)).to(device)
    k4 = k.clone()
    k4[:, :, later] *= -3
    out4 = attention(q, k4, v, layout)
    assert torch.equal(out[:, :, earlier], out4[:, :, earlier])


@pytest.mark.parametrize("device", DEVICES)
def test_strided_inputs(device):
    layout = random_layout(260, 0.5)
    dtype = DTYPES[device][0]
    b, n, h, d = 2, layout.num_tokens, 4, 64
    base = [torch.randn(b, n, h, d, device=device, dtype=dtype) for _ in range(3)]
    q, k, v = (t.transpose(1, 2) for t in base)  # (B, H, N, D) views, as a model produces them
    assert not q.is_contiguous()
    out = attention(q, k, v, layout)
    ref = attention(*(t.contiguous() for t in (q, k, v)), layout)
    assert torch.equal(out, ref)


@pytest.mark.parametrize("device", DEVICES)
def test_native_forward_writes_every_output_element(device):
    """Poison the outputs, call the kernel directly, and check nothing is left unwritten."""
    layout = random_layout(300, 0.3)
    dtype = DTYPES[device][0]
    q, k, v = qkv(layout, device, dtype)
    out = torch.full_like(q, float("nan"))
    lse = torch.full(q.shape[:3], float("nan"), device=device)
    tensors = layout.to(device).tensors()
    native_module(device).forward(
        DTYPE_CODES[dtype], (*q.shape, 0.125), bhnd(q), bhnd(k), bhnd(v), bhnd(out), lse.data_ptr(),
        layout_args(layout.num_tokens, tensors),
        torch.cuda.current_stream().cuda_stream if device == "cuda" else 0,
    )
    if device == "cuda":
        torch.cuda.synchronize()
    assert not torch.isnan(out).any() and not torch.isnan(lse).any()


def test_opcheck():
    layout = random_layout(150, 0.5)
    q, k, v = qkv(layout, "cpu", torch.float32, batch=1, heads=2, requires_grad=True)
    args = (q, k, v, *layout.tensors(), 0.125)
    torch.library.opcheck(torch.ops.aim.block_sparse_attention_fwd.default, args)


def test_torch_compile_forward_and_backward():
    layout = random_layout(200, 0.5)
    q, k, v = qkv(layout, "cpu", torch.float32, batch=1, heads=2, requires_grad=True)

    def loss(q, k, v):
        return (attention(q, k, v, layout) ** 2).sum()

    compiled = torch.compile(loss, fullgraph=True)
    value = compiled(q, k, v)
    grads = torch.autograd.grad(value, (q, k, v))
    eager = loss(q, k, v)
    eager_grads = torch.autograd.grad(eager, (q, k, v))
    assert torch.allclose(value, eager, rtol=1e-5)
    for g, e in zip(grads, eager_grads):
        assert torch.allclose(g, e, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda q, k, v, L: attention(q[0], k, v, L), "batch, heads, tokens, head_dim"),
        (lambda q, k, v, L: attention(q, k[:, :, :-1], v, L), "shapes differ"),
        (lambda q, k, v, L: attention(q.double(), k.double(), v.double(), L), "unsupported dtype"),
        (lambda q, k, v, L: attention(q, k.half(), v, L), "dtypes differ"),
        (lambda q, k, v, L: attention(q, k, v, AttentionLayout.from_mask(torch.ones(64, 64, dtype=torch.bool))), "built for 64 tokens"),
        (lambda q, k, v, L: attention(q.transpose(-1, -2).contiguous().transpose(-1, -2), k, v, L), "non-contiguous"),
        (lambda q, k, v, L: attention(q, k, v, L.to_dense()), "AttentionLayout"),
        (lambda q, k, v, L: attention(q, k, v.to("meta"), L), "different devices"),
    ],
)
def test_bad_input_is_named(make, message):
    layout = random_layout(100, 0.5)
    q, k, v = qkv(layout, "cpu", torch.float32)
    with pytest.raises((ValueError, TypeError), match=message):
        make(q, k, v, layout)


@pytest.mark.parametrize("device,dtype,head_dim", [("cpu", torch.float32, 300), ("cuda", torch.bfloat16, 96)])
def test_head_dim_the_native_kernel_lacks(monkeypatch, device, dtype, head_dim):
    """Asked for, the native kernel is a named error; auto runs another backend instead."""
    if device not in DEVICES:
        pytest.skip("needs a CUDA device")
    layout = random_layout(100, 0.5)
    q, k, v = qkv(layout, device, dtype, head_dim=head_dim, requires_grad=True)
    monkeypatch.setenv("AIM_ATTENTION_BACKEND", "native")
    with pytest.raises(ValueError, match=f"head_dim {head_dim}"):
        attention(q, k, v, layout)
    monkeypatch.setenv("AIM_ATTENTION_BACKEND", "auto")
    out = attention(q, k, v, layout)
    ref, _ = attention_reference(q, k, v, layout.to_dense())
    assert rel_err(out, ref) < TOLERANCE[dtype]


@pytest.mark.parametrize("device", DEVICES)
def test_deterministic_backward_matches_default_and_repeats_bitwise(device):
    """torch.use_deterministic_algorithms(True) selects the fixed-order dQ pass on CUDA (the CPU
    backward is always deterministic): same gradients as the default, bitwise equal across runs."""
    layout = LAYOUTS["aim-large"]()
    dtype = DTYPES[device][-1]
    q, k, v = qkv(layout, device, dtype, requires_grad=True)
    dout = torch.randn_like(q)

    def grads():
        q.grad = k.grad = v.grad = None
        attention(q, k, v, layout).backward(dout)
        return [t.grad.clone() for t in (q, k, v)]

    default = grads()
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        first, second = grads(), grads()
    finally:
        torch.use_deterministic_algorithms(previous)
    for name, a, b, d in zip("qkv", first, second, default):
        assert torch.equal(a, b), f"d{name} differs between two deterministic runs"
        assert rel_err(a, d) < TOLERANCE[dtype], f"d{name}"


# ---- CPU: both instruction sets (AIM_CPU_ISA) --------------------------------------------------------

needs_avx2 = pytest.mark.skipif(native_module("cpu").isa(0) != "avx2", reason="this processor has no AVX2")


@needs_avx2
def test_cpu_isa_switch_reaches_the_kernels(monkeypatch):
    """AIM_CPU_ISA, read by Python on every call and passed to the kernels: generic and avx2 both
    match the float64 reference, and they are different code (their exp2 and sums round
    differently, so thousands of outputs cannot all agree bit for bit), while auto is avx2 here."""
    layout = LAYOUTS["aim-ragged"]()
    q, k, v = qkv(layout, "cpu", torch.float32, requires_grad=True)
    dout = torch.randn_like(q)
    results = {}
    for isa in ("generic", "avx2", "auto"):
        monkeypatch.setenv("AIM_CPU_ISA", isa)
        q.grad = k.grad = v.grad = None
        out = attention(q, k, v, layout)
        out.backward(dout)
        results[isa] = [out.detach(), q.grad, k.grad, v.grad]
    ref_inputs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref_out, _ = attention_reference(*ref_inputs, layout.to_dense())
    ref_out.backward(dout.double())
    for isa, got in results.items():
        for name, t, r in zip(("out", "dq", "dk", "dv"), got, [ref_out] + [t.grad for t in ref_inputs]):
            assert rel_err(t, r) < 2 * TOLERANCE[torch.float32], (isa, name)
    assert all(torch.equal(a, b) for a, b in zip(results["auto"], results["avx2"]))
    assert not torch.equal(results["generic"][0], results["avx2"][0])


def test_cpu_isa_choice_is_checked(monkeypatch):
    layout = random_layout(100, 0.5)
    q, k, v = qkv(layout, "cpu", torch.float32)
    monkeypatch.setenv("AIM_CPU_ISA", "sse")
    with pytest.raises(UsageError, match="^AIM_CPU_ISA=sse: expected auto, generic or avx2$"):
        attention(q, k, v, layout)


def test_native_modules_take_the_kernel_choice_as_an_argument():
    module = native_module("cpu")
    assert module.isa(1) == "generic" and module.isa(0) in ("avx2", "generic")
    with pytest.raises(ValueError, match="unknown kernel choice code 7"):
        module.isa(7)


# ---- CUDA: both backward kernels (AIM_CUDA_BWD_KERNEL), both dQ modes --------------------------------

needs_cuda = pytest.mark.skipif("cuda" not in DEVICES, reason="needs a CUDA device")
BACKWARD_KERNELS = ["portable", "sm90"]


def use_backward_kernel(monkeypatch, kernel):
    if kernel == "sm90" and torch.cuda.get_device_capability() != (9, 0):
        pytest.skip("the sm90 backward needs compute capability 9.0")
    monkeypatch.setenv("AIM_CUDA_BWD_KERNEL", kernel)  # "sm90": an error instead of a silent fallback


@needs_cuda
@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize("kernel", BACKWARD_KERNELS)
@pytest.mark.parametrize("dtype", DTYPES["cuda"])
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("layout_name", list(LAYOUTS))
def test_cuda_backward_kernels_match_float64_reference(monkeypatch, kernel, deterministic, dtype, head_dim,
                                                       layout_name):
    use_backward_kernel(monkeypatch, kernel)
    layout = LAYOUTS[layout_name]()
    q, k, v = qkv(layout, "cuda", dtype, head_dim=head_dim, requires_grad=True)
    out = attention(q, k, v, layout)
    dout = torch.randn_like(out)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic)
    try:
        out.backward(dout)
    finally:
        torch.use_deterministic_algorithms(previous)
    ref_inputs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref_out, _ = attention_reference(*ref_inputs, layout.to_dense().to("cuda"))
    ref_out.backward(dout.double())
    for name, t, r in zip("qkv", (q, k, v), ref_inputs):
        assert rel_err(t.grad, r.grad) < 2 * TOLERANCE[dtype], f"d{name}"


@needs_cuda
@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize("kernel", BACKWARD_KERNELS)
@pytest.mark.parametrize("head_dim", [64, 128])
def test_cuda_native_backward_writes_every_gradient_element(monkeypatch, kernel, deterministic, head_dim):
    """Poison dq, dk, dv, call the kernels directly on a ragged layout with empty rows and keys,
    and check that nothing is left unwritten and that the result is the autograd one."""
    use_backward_kernel(monkeypatch, kernel)
    mask = torch.rand(333, 333) < 0.4
    mask[17] = False
    mask[:, 200:230] = False
    layout = AttentionLayout.from_mask(mask)
    dtype = torch.bfloat16
    q, k, v = qkv(layout, "cuda", dtype, head_dim=head_dim)
    tensors = layout.to("cuda").tensors()
    out, lse = torch.ops.aim.block_sparse_attention_fwd(q, k, v, *tensors, head_dim**-0.5)
    dout = torch.randn_like(out)
    dq, dk, dv = (torch.full_like(q, float("nan")) for _ in range(3))
    delta = torch.full(q.shape[:3], float("nan"), device="cuda")
    dq_accum = None if deterministic else torch.zeros(q.shape, dtype=torch.float32, device="cuda")
    native_module("cuda").backward(
        DTYPE_CODES[dtype], (*q.shape, head_dim**-0.5), bhnd(q), bhnd(k), bhnd(v), bhnd(out), bhnd(dout),
        lse.data_ptr(), bhnd(dq), bhnd(dk), bhnd(dv), delta.data_ptr(),
        0 if dq_accum is None else dq_accum.data_ptr(), layout_args(layout.num_tokens, tensors),
        torch.cuda.current_stream().cuda_stream, deterministic,
    )
    torch.cuda.synchronize()
    assert not any(torch.isnan(t).any() for t in (dq, dk, dv))
    assert (dk[:, :, 200:230] == 0).all() and (dv[:, :, 200:230] == 0).all() and (dq[:, :, 17] == 0).all()
    ref = torch.ops.aim.block_sparse_attention_bwd(dout, q, k, v, out, lse, *tensors, head_dim**-0.5)
    for name, got, want in zip("qkv", (dq, dk, dv), ref):
        assert rel_err(got, want) < TOLERANCE[dtype], f"d{name}"


@needs_cuda
@pytest.mark.parametrize("kernel", BACKWARD_KERNELS)
def test_cuda_backward_of_strided_inputs(monkeypatch, kernel):
    """(B, H, N, D) views of (B, N, H, D) tensors (the TMA maps' head stride below the token
    stride) give the contiguous inputs' gradients."""
    use_backward_kernel(monkeypatch, kernel)
    layout = random_layout(260, 0.5)
    b, n, h, d = 2, layout.num_tokens, 4, 128
    base = [torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
    dout = torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16)
    grads = []
    for inputs in ([t.transpose(1, 2) for t in base], [t.transpose(1, 2).contiguous() for t in base]):
        leaves = [t.detach().requires_grad_() for t in inputs]
        attention(*leaves, layout).backward(dout)
        grads.append([t.grad for t in leaves])
    for name, strided, contiguous in zip("qkv", *grads):
        assert rel_err(strided, contiguous) < 1e-2, f"d{name}"


@needs_cuda
def test_cuda_kernel_choice_is_checked(monkeypatch):
    layout = random_layout(100, 0.5)
    q, k, v = qkv(layout, "cuda", torch.bfloat16, requires_grad=True)
    monkeypatch.setenv("AIM_CUDA_BWD_KERNEL", "fastest")
    with pytest.raises(ValueError, match="AIM_CUDA_BWD_KERNEL=fastest: expected auto, portable or sm90"):
        attention(q, k, v, layout).sum().backward()
