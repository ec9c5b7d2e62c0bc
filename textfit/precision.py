"""Pick the arithmetic: bf16 autocast where the hardware runs it fast, fp32 elsewhere.

On this project's CPUs (AVX512-BF16/AMX) bf16 autocast trains 1.5-1.9x faster than fp32 at the same accuracy
(../shared/notes/cpu-baselines.md); master weights and the optimizer stay fp32 either way.
"""

from __future__ import annotations

import torch


def cpu_has_fast_bf16() -> bool:
    """oneDNN's own check for native bf16 instructions (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_has_amx() -> bool:
    """AMX tiles make bf16 matmuls several times faster than AVX512-BF16 alone (Linux reports the flag)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return any(line.startswith("flags") and " amx_bf16" in line for line in info)
    except OSError:
        return False


def resolve_precision(requested: str) -> tuple[str, str]:
    """Return (precision, note): the precision to use and why, when it differs from the request."""
    cuda = torch.cuda.is_available()
    if requested == "fp16":
        if cuda:
            return "fp16", ""
        # a recipe from a GPU run (a card trained with Native AMP): repeat it in what this CPU does best
        fallback = "bf16" if cpu_has_fast_bf16() else "fp32"
        return fallback, f" (fp16 asked for, which needs a GPU: {fallback} on this CPU instead)"
    if requested == "fp32":
        return "fp32", ""
    fast_bf16 = torch.cuda.is_bf16_supported() if cuda else cpu_has_fast_bf16()
    if fast_bf16:
        return "bf16", " (auto: bf16 instructions found)" if requested == "auto" else ""
    if requested == "bf16":
        return "fp32", " (bf16 requested, but this CPU has no native bf16: using fp32)"
    return ("fp16", " (auto: GPU without bf16)") if cuda else ("fp32", " (auto: no native bf16 on this CPU)")
