"""One BOS, whoever writes it: chat templates that render ``{{ bos_token }}`` beside tokenizers that add it.

Gemma-3, Idefics3, Mllama and Mistral3 hub templates start with the BOS
string and their tokenizers prepend BOS as well, so encoding a rendered
prompt with the tokenizer's defaults gives ``<bos><bos>...``. lm-eval's
text-only path avoids it (it encodes without special tokens when the text
starts with BOS) but its image+text path does not, and a processor called on
rendered text doubles it in training. :func:`drop_rendered_bos` removes the
rendered copy where the tokenizer adds its own, so both modalities, and
training and scoring, see one BOS.
"""

from __future__ import annotations


def adds_bos(tokenizer) -> bool:
    """Whether ``tokenizer(text)`` (default special tokens) starts with its BOS id."""
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is None:
        return False
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0] == bos_id and tokenizer("a", add_special_tokens=False)["input_ids"][:1] != [bos_id]


def drop_rendered_bos(texts: list[str], tokenizer) -> list[str]:
    """``texts`` without a leading BOS string where the tokenizer adds BOS itself (else unchanged)."""
    bos = getattr(tokenizer, "bos_token", None)
    if not bos or not adds_bos(tokenizer):
        return list(texts)
    return [t[len(bos):] if t.startswith(bos) else t for t in texts]
