"""Logits over a data set during training: each process takes every world-th batch, all gather the rest."""

from __future__ import annotations

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

from textfit.batching import Encoded, collate, sorted_batches


@torch.no_grad()
def gathered_logits(model: torch.nn.Module, data: Encoded, accelerator: Accelerator, batch_size: int,
                    pad_token_id: int) -> np.ndarray:
    """Float32 logits in the data's own order (batches are sorted by length, then put back)."""
    world, device = accelerator.num_processes, accelerator.device
    local = []
    for indices in sorted_batches(data.lengths(), batch_size)[accelerator.process_index::world]:
        batch = collate(data, indices, pad_token_id)
        batch.pop("labels", None)
        if device.type != "cpu":
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        local.append((indices, model(**batch).logits.float().cpu()))
    parts = gather_object(local) if world > 1 else local
    order = [i for indices, _ in parts for i in indices]
    return torch.cat([logits for _, logits in parts])[torch.argsort(torch.tensor(order))].numpy()
