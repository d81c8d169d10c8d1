"""A caller's backend choice for a scope (aim.ops.attention_backend): it applies inside, ends with
the block, comes before AIM_ATTENTION_BACKEND, stays in its own thread, never touches the
environment, and under torch.compile is fixed while tracing."""

import os
import threading

import pytest
import torch

from aim.errors import UsageError
from aim.ops import AttentionBackend, AttentionLayout, Platform, attention, attention_backend, resolve_attention_backend
from aim.ops.backend import ENV_VAR, resolve_dense_backend

B = AttentionBackend
CPU = torch.device("cpu")
PLATFORM = Platform(native={"cpu": None})


def chosen(requires_grad: bool = True) -> AttentionBackend:
    return resolve_attention_backend(CPU, torch.float32, 64, requires_grad, platform=PLATFORM)


def test_the_scope_applies_inside_and_ends_with_the_block_without_touching_the_environment(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    environment = dict(os.environ)
    assert chosen() is B.NATIVE
    with attention_backend("sdpa"):
        assert chosen() is B.SDPA
        assert resolve_dense_backend(CPU, torch.float32, 64, platform=PLATFORM) is B.SDPA
        assert dict(os.environ) == environment
    assert chosen() is B.NATIVE
    assert dict(os.environ) == environment


def test_the_scope_comes_before_the_variable_and_auto_leaves_the_choice_to_it(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "sdpa")
    with attention_backend("native"):
        assert chosen() is B.NATIVE
        with attention_backend("auto"):
            assert chosen() is B.NATIVE  # auto chooses nothing: the enclosing scope still holds
    with attention_backend("auto"):
        assert chosen() is B.SDPA
    with attention_backend("native"):
        with attention_backend("sdpa"):
            assert chosen() is B.SDPA
        assert chosen() is B.NATIVE


def test_the_scope_is_restored_when_the_block_raises(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(RuntimeError, match="inside"):
        with attention_backend("sdpa"):
            raise RuntimeError("inside")
    assert chosen() is B.NATIVE


def test_another_thread_does_not_see_the_scope(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    seen = []
    with attention_backend("sdpa"):
        thread = threading.Thread(target=lambda: seen.append(chosen()))
        thread.start()
        thread.join()
    assert seen == [B.NATIVE]


def test_bad_names_and_impossible_choices_name_their_source(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(UsageError, match="^train.attention_backend=flash2: expected one of auto, native"):
        with attention_backend("flash2", source="train.attention_backend"):
            pass
    with attention_backend("xformers", source="train.attention_backend"):
        with pytest.raises(UsageError, match="^train.attention_backend=xformers cannot run attention on cpu "
                                             "float32 head_dim 64.*CUDA only"):
            chosen()


def capturing_compile(fn):
    """``torch.compile(fn)`` that records the call targets of every graph it traces."""
    graphs = []

    def capture(gm, example_inputs):
        graphs.append({str(node.target) for node in gm.graph.nodes if node.op == "call_function"})
        return gm.forward

    return torch.compile(fn, backend=capture, fullgraph=True), graphs


@pytest.mark.parametrize("name,present,other", [
    ("native", "aim.block_sparse_attention_fwd", "sdpa"),
    ("sdpa", "scaled_dot_product_attention", "native"),
])
def test_under_torch_compile_the_scope_in_force_while_tracing_decides(monkeypatch, name, present, other):
    """The resolver is a constant of the compiled graph (torch.compiler.assume_constant_result):
    the scope chooses at trace time, and a later scope does not retrace that graph."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    layout = AttentionLayout.from_mask(torch.rand(200, 200) < 0.5)
    q, k, v = (torch.randn(1, 2, 200, 64) for _ in range(3))

    def fn(q, k, v):
        return attention(q, k, v, layout)

    torch._dynamo.reset()
    compiled, graphs = capturing_compile(fn)
    with attention_backend(name):
        out = compiled(q, k, v)
        eager = fn(q, k, v)
    assert len(graphs) == 1 and any(present in op for op in graphs[0]), graphs
    absent = "scaled_dot_product_attention" if name == "native" else "aim.block_sparse_attention_fwd"
    assert not any(absent in op for op in graphs[0]), graphs
    assert torch.allclose(out, eager, atol=1e-5)
    with attention_backend(other):
        compiled(q, k, v)
    assert len(graphs) == 1  # fixed at trace time
