"""The environment switches of ``aim.ops``, read here and nowhere else.

Four variables choose implementations without a code change. Python reads them on every call
(so one process can compare the choices); the native modules never read the environment: the
choice reaches them as the ``kernel`` argument of their bindings (``aim::KernelChoice`` in
``csrc/include/aim/native_codes.h``).

=========================  ===========================  ==========================================
variable                   values (first: the default)  chooses
=========================  ===========================  ==========================================
``AIM_ATTENTION_BACKEND``  auto native flash flex       the implementation of the shared attention
                           xformers sdpa                (:mod:`aim.ops.backend`; a scope set with
                                                        :func:`aim.ops.backend.attention_backend`
                                                        comes first)
``AIM_CPU_ISA``            auto generic avx2            the CPU kernels' instruction set
``AIM_CUDA_FWD_KERNEL``    auto portable sm90           the CUDA forward: Hopper or portable
``AIM_CUDA_BWD_KERNEL``    auto portable sm90           the CUDA backward's main kernel
=========================  ===========================  ==========================================

Unset or empty means the default; values are case-insensitive. A value outside the list is a
one-line :class:`~aim.errors.UsageError` naming the variable and the values it takes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from aim.errors import UsageError


@dataclass(frozen=True)
class Switch:
    """One environment variable and the values it may take (``choices[0]`` is the default)."""

    name: str
    choices: tuple[str, ...]

    def value(self) -> str:
        """The variable's value now, checked against :attr:`choices`."""
        raw = os.environ.get(self.name, "").strip().lower()
        if not raw:
            return self.choices[0]
        if raw not in self.choices:
            raise UsageError(f"{self.name}={raw}: expected {', '.join(self.choices[:-1])} or {self.choices[-1]}")
        return raw


ATTENTION_BACKEND = Switch("AIM_ATTENTION_BACKEND", ("auto", "native", "flash", "flex", "xformers", "sdpa"))
CPU_ISA = Switch("AIM_CPU_ISA", ("auto", "generic", "avx2"))
CUDA_FWD_KERNEL = Switch("AIM_CUDA_FWD_KERNEL", ("auto", "portable", "sm90"))
CUDA_BWD_KERNEL = Switch("AIM_CUDA_BWD_KERNEL", ("auto", "portable", "sm90"))

SWITCHES = (ATTENTION_BACKEND, CPU_ISA, CUDA_FWD_KERNEL, CUDA_BWD_KERNEL)


def kernel_switch(device_type: str, backward: bool) -> Switch:
    """The switch that picks the native attention kernel of a pass on ``device_type``."""
    if device_type == "cpu":
        return CPU_ISA
    return CUDA_BWD_KERNEL if backward else CUDA_FWD_KERNEL
