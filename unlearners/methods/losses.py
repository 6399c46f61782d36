"""Loss pieces shared by the methods (answer-only: positions whose label is -100 do not count).

Shapes: ``logits`` (batch, seq, vocab); ``labels`` (batch, seq) with -100
outside the answer. The logits at position t predict the token at t + 1.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..collator import IGNORE_INDEX


def model_inputs(batch: dict) -> dict:
    """The batch without ``labels`` (so the model computes no loss of its own)."""
    return {k: v for k, v in batch.items() if k != "labels"}


def forward_logits(model, batch: dict) -> torch.Tensor:
    """``model(**inputs).logits``: (batch, seq, vocab)."""
    return model(**model_inputs(batch)).logits


def token_mean(total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """``total / count``: a sum over this batch's answer tokens over their count (scalar).

    With several processes (``torch.distributed``, DDP or FSDP), ``count`` is replaced by the mean of every
    process's count (one all-reduce): the processes' gradients, which DDP averages, then add up to the single
    process's token mean over the global batch (``sum of all tokens' terms / all tokens``), instead of an
    average of per-process means that weights a process's tokens by how few it has.
    """
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        count = count.detach().to(torch.float64)
        dist.all_reduce(count)
        count = count / dist.get_world_size()
    return total / count.clamp(min=1)


def _shifted(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits at t, the target at t + 1, and the mask of answer targets."""
    logits, targets = logits[:, :-1].float(), labels[:, 1:]
    mask = targets != IGNORE_INDEX
    return logits, targets.masked_fill(~mask, 0), mask


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p(answer token), mask)``, both (batch, seq - 1); zero where masked."""
    logits, targets, mask = _shifted(logits, labels)
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return logp * mask, mask


def answer_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per answer token, averaged over all answer tokens of the batch (scalar, nats).

    The usual causal-LM loss (what ``model(labels=...)`` returns), restricted to the answer.

    Raises:
        ValueError: the batch has no answer token.
    """
    logp, mask = token_logprobs(logits, labels)
    count = mask.sum()
    if count == 0:
        raise ValueError("the batch has no answer token (every label is -100)")
    return token_mean(-logp.sum(), count)


def batch_nll(model, batch: dict) -> torch.Tensor:
    """:func:`answer_nll` of ``model`` on one stream's batch (scalar, nats per answer token)."""
    return answer_nll(forward_logits(model, batch), batch["labels"])


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log p(answer | prompt) per sequence, summed over answer tokens: (batch,), nats."""
    logp, _ = token_logprobs(logits, labels)
    return logp.sum(dim=-1)


def batchmean_kl(reference_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Released KL_Min term: ``F.kl_div(log_softmax(logits), softmax(reference_logits), reduction="batchmean")``.

    ``KL(p_reference || p_theta)`` summed over every position (padding and
    image positions included, no mask) and the vocabulary, divided by the
    batch size (scalar, nats; KL_Min.py:544-551 of the released code).
    """
    log_p = torch.log_softmax(logits.float(), dim=-1)
    log_ref = torch.log_softmax(reference_logits.float(), dim=-1)
    return F.kl_div(log_p, log_ref, log_target=True, reduction="batchmean")


def answer_kl(reference_logits: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """KL(p_reference || p_theta) over the vocabulary, averaged over answer positions (scalar, nats).

    ``KL = sum_v p_ref(v) (log p_ref(v) - log p_theta(v))`` at each position
    predicting an answer token (Kullback & Leibler 1951).
    """
    _, _, mask = _shifted(logits, labels)
    log_p = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    log_ref = torch.log_softmax(reference_logits[:, :-1].float(), dim=-1)
    kl = F.kl_div(log_p, log_ref, log_target=True, reduction="none").sum(-1)
    return token_mean((kl * mask).sum(), mask.sum())


def answer_lengths(labels: torch.Tensor) -> torch.Tensor:
    """Answer tokens per sequence (batch,), the ``|y|`` of length-normalised losses."""
    return (labels[:, 1:] != IGNORE_INDEX).sum(dim=-1)


def weighted_ascent(logits: torch.Tensor, labels: torch.Tensor, weight) -> torch.Tensor:
    """``mean over answer tokens of w(p) * log p``, with ``w = weight(p)`` held constant (no gradient).

    Minimising it is gradient ascent on the answer cross-entropy with each
    token weighted by a function of its own probability ``p`` (WGA, SatImp).
    ``weight``: tensor -> tensor on ``p`` (batch, seq - 1). Scalar, nats.
    """
    logp, mask = token_logprobs(logits, labels)
    w = weight(logp.detach().exp())
    return token_mean((w * logp * mask).sum(), mask.sum())


def device_batches(collator, examples: list, batch_size: int, device):
    """One pass over ``examples`` in the training collator's batches (``collator.encode``), moved to ``device``."""
    for i in range(0, len(examples), batch_size):
        batch = collator.encode(examples[i:i + batch_size])
        yield {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
