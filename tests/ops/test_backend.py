"""The backend resolver: every choice for every value x device x dtype x head_dim, its errors and
its log line. What is installed and which GPU is there is injected as a Platform."""

import itertools
import logging

import pytest
import torch

from aim.ops import (
    AttentionBackend,
    AttentionLayout,
    Platform,
    attention,
    resolve_attention_backend,
    resolve_dense_backend,
)
from aim.ops import backend as backend_module
from aim.ops.backend import CHOICES, ENV_VAR, AttentionInput, detect_platform, why_not
from aim.ops.reference import attention_reference

B = AttentionBackend
CPU, CUDA = torch.device("cpu"), torch.device("cuda")
F32, F16, BF16 = torch.float32, torch.float16, torch.bfloat16
EVERYTHING = {"flash_attn.cute": None, "flash_attn": None, "xformers": None, "triton": None}
PLATFORMS = {
    "cpu": Platform(native={"cpu": None}),
    "h100-all": Platform(native={"cuda": None}, packages=EVERYTHING, cuda_capability=(9, 0)),
    "b200-all": Platform(native={"cuda": None}, packages=EVERYTHING, cuda_capability=(10, 0)),
    "a100-all": Platform(native={"cuda": None}, packages=EVERYTHING, cuda_capability=(8, 0)),
    "h100-bare": Platform(native={"cuda": None}, packages={"triton": None}, cuda_capability=(9, 0)),
    "h100-no-native": Platform(native={"cuda": "not built"}, packages={"triton": None}, cuda_capability=(9, 0)),
    "h100-xformers": Platform(native={"cuda": None}, packages={"xformers": None}, cuda_capability=(9, 0)),
}


def resolve(monkeypatch, value, device, dtype, head_dim, platform, requires_grad=False, dense=False):
    monkeypatch.setenv(ENV_VAR, value)
    fn = resolve_dense_backend if dense else resolve_attention_backend
    return fn(device, dtype, head_dim, requires_grad, platform=PLATFORMS[platform])


# (value, device, dtype, head_dim, requires_grad, platform) -> backend, or the error's key words
CASES = [
    ("auto", CPU, F32, 64, True, "cpu", B.NATIVE),
    ("auto", CPU, BF16, 16, True, "cpu", B.NATIVE),
    ("auto", CPU, F16, 256, False, "cpu", B.NATIVE),
    ("auto", CPU, F32, 300, False, "cpu", B.FLEX),  # past the CPU kernel's head_dim, no gradient
    ("auto", CPU, F32, 300, True, "cpu", B.SDPA),  # Flex has no CPU backward
    ("auto", CUDA, BF16, 128, True, "h100-all", B.NATIVE),
    ("auto", CUDA, F16, 64, True, "h100-all", B.NATIVE),
    ("auto", CUDA, BF16, 16, True, "h100-all", B.FLASH),  # the tiny preset on a GPU: never native
    ("auto", CUDA, BF16, 16, True, "b200-all", B.FLASH),
    ("auto", CUDA, BF16, 16, True, "a100-all", B.FLEX),  # FlashAttention-4 needs sm90/sm100
    ("auto", CUDA, BF16, 24, True, "a100-all", B.XFORMERS),  # Flex only at power-of-two head_dim
    ("auto", CUDA, F32, 128, True, "h100-all", B.FLEX),  # fp32: neither native nor FlashAttention
    ("auto", CUDA, BF16, 256, True, "h100-all", B.FLEX),  # FlashAttention-4's 128 x 128 tiles stop at 128
    ("auto", CUDA, BF16, 16, True, "h100-bare", B.FLEX),
    ("auto", CUDA, BF16, 24, True, "h100-bare", B.SDPA),
    ("auto", CUDA, BF16, 128, True, "h100-no-native", B.FLEX),
    ("auto", CUDA, BF16, 24, True, "h100-xformers", B.XFORMERS),
    ("native", CPU, F32, 64, True, "cpu", B.NATIVE),
    ("native", CPU, F32, 300, True, "cpu", "head_dim 300"),
    ("native", CUDA, BF16, 16, True, "h100-all", "head_dim 16"),
    ("native", CUDA, F32, 64, True, "h100-all", "float32"),
    ("native", CUDA, BF16, 64, True, "h100-no-native", "AIM_CUDA=on"),
    ("flash", CUDA, BF16, 16, True, "h100-all", B.FLASH),
    ("flash", CUDA, F16, 128, True, "b200-all", B.FLASH),
    ("flash", CUDA, BF16, 64, True, "a100-all", "sm90 or sm100"),
    ("flash", CUDA, BF16, 64, True, "h100-bare", "flash-attn-4"),
    ("flash", CUDA, BF16, 20, True, "h100-all", "head_dim 8..128"),
    ("flash", CUDA, BF16, 256, True, "h100-all", "head_dim 8..128"),
    ("flash", CUDA, F32, 64, True, "h100-all", "float32"),
    ("flash", CPU, BF16, 64, False, "cpu", "CUDA only"),
    ("flex", CPU, F32, 64, False, "cpu", B.FLEX),
    ("flex", CPU, F32, 64, True, "cpu", "no backward on the CPU"),
    ("flex", CUDA, F32, 64, True, "h100-all", B.FLEX),
    ("flex", CUDA, BF16, 24, True, "h100-all", "head_dim"),
    ("xformers", CUDA, BF16, 24, True, "h100-xformers", B.XFORMERS),
    ("xformers", CUDA, BF16, 64, True, "h100-bare", "aim[xformers]"),
    ("xformers", CPU, F32, 64, False, "cpu", "CUDA only"),
    ("sdpa", CPU, F32, 7, True, "cpu", B.SDPA),
    ("sdpa", CUDA, F32, 300, True, "h100-bare", B.SDPA),
]


@pytest.mark.parametrize("value,device,dtype,head_dim,requires_grad,platform,expected", CASES)
def test_choices_and_errors(monkeypatch, value, device, dtype, head_dim, requires_grad, platform, expected):
    if isinstance(expected, B):
        assert resolve(monkeypatch, value, device, dtype, head_dim, platform, requires_grad) is expected
        return
    with pytest.raises(ValueError) as err:
        resolve(monkeypatch, value, device, dtype, head_dim, platform, requires_grad)
    message = str(err.value)
    assert "\n" not in message and f"{ENV_VAR}={value}" in message and expected in message, message


DEVICE_PLATFORMS = [(CPU, "cpu")] + [(CUDA, name) for name in PLATFORMS if name != "cpu"]


@pytest.mark.parametrize("device,platform", DEVICE_PLATFORMS)
def test_every_value_dtype_and_head_dim(monkeypatch, device, platform):
    """Over the whole grid: an explicit choice runs or is a one-line error; auto takes the first of
    native, flash, flex, xformers, sdpa that the explicit choice would accept; auto on a GPU never
    takes native at a head_dim the CUDA kernel lacks."""
    order = (B.NATIVE, B.FLASH, B.FLEX, B.XFORMERS, B.SDPA)
    for dtype, head_dim, grad in itertools.product((F32, F16, BF16), (8, 16, 24, 32, 64, 96, 128, 256), (False, True)):
        accepted = []
        for backend in order:
            try:
                got = resolve(monkeypatch, backend.value, device, dtype, head_dim, platform, grad)
            except ValueError as err:
                assert "\n" not in str(err)
                continue
            assert got is backend
            accepted.append(backend)
        assert B.SDPA in accepted
        auto = resolve(monkeypatch, "auto", device, dtype, head_dim, platform, grad)
        assert auto is accepted[0], (dtype, head_dim, grad, accepted)
        if device.type == "cuda" and head_dim not in (64, 128):
            assert auto is not B.NATIVE


@pytest.mark.parametrize(
    "value,platform,dtype,head_dim,expected",
    [
        ("auto", "cpu", F32, 64, B.SDPA),
        ("auto", "h100-all", BF16, 128, B.FLASH),
        ("auto", "a100-all", BF16, 128, B.FLASH),  # flash-attn 2.x on sm80
        ("auto", "h100-xformers", BF16, 128, B.XFORMERS),
        ("auto", "h100-bare", BF16, 128, B.SDPA),
        ("native", "h100-all", BF16, 128, B.FLASH),  # native has no cross-attention kernel
        ("flex", "h100-bare", BF16, 128, B.SDPA),
        ("flash", "h100-all", BF16, 256, B.FLASH),  # FlashAttention-4's dense kernel on sm90 goes to 256
        ("flash", "h100-bare", BF16, 128, "flash-attn"),
        ("xformers", "cpu", F32, 64, "CUDA only"),
        ("sdpa", "h100-all", BF16, 128, B.SDPA),
    ],
)
def test_cross_attention_choices(monkeypatch, value, platform, dtype, head_dim, expected):
    device = CPU if platform == "cpu" else CUDA
    if isinstance(expected, B):
        assert resolve(monkeypatch, value, device, dtype, head_dim, platform, True, dense=True) is expected
        return
    with pytest.raises(ValueError, match=expected):
        resolve(monkeypatch, value, device, dtype, head_dim, platform, True, dense=True)


def test_one_log_line_says_what_and_why(monkeypatch, caplog):
    monkeypatch.setattr(backend_module, "_announced", set())  # forget what earlier tests announced
    with caplog.at_level(logging.INFO, logger="aim"):
        for _ in range(3):
            resolve(monkeypatch, "auto", CUDA, BF16, 16, "h100-bare", True)
    lines = [r.getMessage() for r in caplog.records if "attention backend" in r.getMessage()]
    assert len(lines) == 1
    assert "flex" in lines[0] and "head_dim 16" in lines[0] and "not native" in lines[0]


def test_bad_value_is_named(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "triton")
    with pytest.raises(ValueError, match=ENV_VAR):
        resolve_attention_backend(CPU, F32, 64)


def test_train_config_accepts_every_backend():
    from aim.train.config import ConfigError, LoopConfig

    for value in CHOICES:
        assert LoopConfig(attention_backend=value).attention_backend == value
    with pytest.raises(ConfigError, match="attention_backend"):
        LoopConfig(attention_backend="flash2")


def test_detected_cpu_platform_runs_native(monkeypatch):
    """Without an injected platform the resolver probes this machine: the CPU module is built here."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert why_not(B.NATIVE, AttentionInput("cpu", F32, 64), detect_platform(CPU)) is None
    for dtype in (F32, F16, BF16):
        assert resolve_attention_backend(CPU, dtype, 64) is B.NATIVE


def test_override_to_sdpa_gives_the_same_function(monkeypatch):
    mask = torch.rand(150, 150) < 0.4
    mask[3] = False
    layout = AttentionLayout.from_mask(mask)
    q, k, v = (torch.randn(1, 2, 150, 64) for _ in range(3))
    monkeypatch.setenv(ENV_VAR, "sdpa")
    out = attention(q, k, v, layout)
    ref, _ = attention_reference(q, k, v, mask)
    assert ((out.double() - ref).norm() / ref.norm()) < 1e-5
    assert (out[:, :, 3] == 0).all()
