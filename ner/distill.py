"""Learning without forgetting (Li and Hoiem 2016): keep old heads' outputs while the encoder learns.

When a head is added to a trained pipeline and the shared encoder is fine-tuned for it, the other
heads read moved features. Distillation needs none of their data: on each batch of the *new* task,
a frozen copy of the model as it was (the teacher) gives the old heads' outputs, and the student is
penalised for drifting from them, so the encoder learns the new task in directions the old heads
do not see.

Which outputs, per head type (a head type without an entry here cannot be distilled):

* tagger: the tag distribution of every real word (KL divergence at a temperature);
* SpERT: the entity-type distribution of candidate spans (every span the teacher calls an entity,
  plus a random sample of the others up to :data:`MAX_SPANS`), and the relation probabilities of
  pairs of the teacher's entities (Bernoulli KL per type, up to :data:`MAX_PAIRS` pairs).

The heads' logits come from their own methods (``logits``, ``entity_logits``, ``relation_logits``),
so the distilled quantity is exactly what their ``decode`` turns into predictions.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ner.encoder import Encoding, PieceBatch
from ner.heads.spert import SpertHead, disjoint, enumerate_spans, pairs_within_docs
from ner.heads.tagger import TaggerHead
from ner.model import ExtractionModel
from ner.pooling import RangeMaxPool

#: candidate spans per batch whose entity distributions are distilled (all teacher entities, then others)
MAX_SPANS = 4096
#: pairs of teacher entities per batch whose relation probabilities are distilled
MAX_PAIRS = 4096


def soft_kl(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """KL(teacher || student) of softmax distributions at ``temperature``, mean over rows, scaled by
    T^2 (Hinton et al.) so the gradient's size does not depend on T; 0 for no rows."""
    if student.numel() == 0:
        return student.sum() * 0.0
    log_student = nn.functional.log_softmax(student / temperature, dim=-1)
    log_teacher = nn.functional.log_softmax(teacher / temperature, dim=-1)
    kl = nn.functional.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean")
    return kl * temperature**2


def bernoulli_kl(student: Tensor, teacher: Tensor) -> Tensor:
    """KL between independent sigmoids (one per relation type), summed over types, mean over pairs."""
    if student.numel() == 0:
        return student.sum() * 0.0
    target = teacher.sigmoid()
    cross = nn.functional.binary_cross_entropy_with_logits(student, target, reduction="none")
    entropy = nn.functional.binary_cross_entropy_with_logits(teacher, target, reduction="none")
    return (cross - entropy).sum(-1).mean()


def tagger_loss(
    head: TaggerHead, student: Encoding, teacher: Encoding, temperature: float, generator: torch.Generator
) -> Tensor:
    """KL of the tag distributions of every real word."""
    real = torch.arange(student.word_starts.shape[1], device=student.states.device)[None, :]
    real = real < student.word_counts[:, None]
    with torch.no_grad():
        target = head.logits(teacher)[real]
    return soft_kl(head.logits(student)[real], target, temperature)


def spert_loss(
    head: SpertHead, student: Encoding, teacher: Encoding, temperature: float, generator: torch.Generator
) -> Tensor:
    """KL of entity distributions over candidate spans, plus relation KL over pairs of the teacher's
    entities (see the module docstring for which spans and pairs)."""
    doc, start, end = enumerate_spans(teacher.word_counts, head.config.max_span_width)
    with torch.no_grad():
        t_pool = RangeMaxPool(teacher.states)
        t_pooled, t_widths, piece_start, piece_end = head.span_features(teacher, t_pool, doc, start, end)
        t_entities = head.entity_logits(teacher, doc, t_pooled, t_widths)
    positive = t_entities.argmax(-1) > 0
    keep = _sample_spans(positive, MAX_SPANS, generator)
    s_pool = RangeMaxPool(student.states)
    s_pooled, s_widths, s_start, s_end = head.span_features(
        student, s_pool, doc[keep], start[keep], end[keep]
    )
    loss = soft_kl(head.entity_logits(student, doc[keep], s_pooled, s_widths), t_entities[keep], temperature)
    pairs = _teacher_pairs(head, positive, doc, start, end)
    if pairs is None:
        return loss
    first, second = pairs
    with torch.no_grad():
        t_relations = head.relation_logits(
            t_pool, doc, piece_start, piece_end, t_pooled, t_widths, first, second
        )
    where = torch.full_like(doc, -1)
    where[keep] = torch.arange(keep.numel(), device=keep.device)
    s_relations = head.relation_logits(
        s_pool, doc[keep], s_start, s_end, s_pooled, s_widths, where[first], where[second]
    )
    return loss + bernoulli_kl(s_relations, t_relations)


def _sample_spans(positive: Tensor, limit: int, generator: torch.Generator) -> Tensor:
    """Indices of every positive span and a random sample of the others, ``limit`` in all (at least
    every positive), in increasing order."""
    chosen = positive.nonzero(as_tuple=True)[0]
    others = (~positive).nonzero(as_tuple=True)[0]
    room = max(0, limit - chosen.numel())
    if others.numel() > room:
        others = others[torch.randperm(others.numel(), generator=generator)[:room].to(others.device)]
    return torch.cat([chosen, others]).sort().values


def _teacher_pairs(head: SpertHead, positive: Tensor, doc: Tensor, start: Tensor, end: Tensor):
    """Ordered pairs of the teacher's entities that decoding would classify (same document, no
    shared word, within ``max_pair_distance``), at most :data:`MAX_PAIRS`; None when there are none
    or the head has no relation types."""
    if not head.schema.relation_types:
        return None
    kept = positive.nonzero(as_tuple=True)[0]
    first, second = pairs_within_docs(doc[kept], start[kept], head.config.max_pair_distance)
    first, second = kept[first], kept[second]
    apart = disjoint(first, second, start, end)
    first, second = first[apart][:MAX_PAIRS], second[apart][:MAX_PAIRS]
    return (first, second) if first.numel() else None


HeadLoss = Callable[[nn.Module, Encoding, Encoding, float, torch.Generator], Tensor]
#: how each head type's outputs are distilled, by the type name of its config
HEAD_LOSSES: dict[str, HeadLoss] = {"tagger": tagger_loss, "spert": spert_loss}


class Distiller:
    """A frozen copy of the model's encoder (and branches) as it was, and the distillation loss of
    ``heads`` against it. The heads themselves stay frozen during training (their weights are the
    teacher's), so only the encoder's drift is penalised."""

    def __init__(
        self, model: ExtractionModel, heads: Sequence[str], weight: float, temperature: float, seed: int
    ) -> None:
        unknown = sorted({model.heads[name].config.type for name in heads} - set(HEAD_LOSSES))
        if unknown:
            raise ValueError(f"no distillation loss for head types {unknown}; known: {sorted(HEAD_LOSSES)}")
        self.heads = list(heads)
        self.weight = weight
        self.temperature = temperature
        self.teacher = ExtractionModel(
            copy.deepcopy(model.encoder),
            {name: model.heads[name] for name in heads},  # shared: frozen, so the teacher's weights
            model.encoder_name,
        )
        for name in heads:
            if name in model.branches:
                self.teacher.branches[name] = copy.deepcopy(model.branches[name])
        self.teacher.encoder.requires_grad_(False).eval()
        self.teacher.branches.requires_grad_(False).eval()
        self.generator = torch.Generator().manual_seed(seed)

    def loss(self, model: ExtractionModel, pieces: PieceBatch, encodings: dict[str, Encoding]) -> Tensor:
        """``weight`` x the mean over ``heads`` of their distillation loss on this batch; ``encodings``
        must hold the student's encoding of every head in ``heads``."""
        with torch.no_grad():
            teacher = self.teacher.encode(pieces, self.heads)
        total = sum(
            HEAD_LOSSES[model.heads[name].config.type](
                model.heads[name], encodings[name], teacher[name], self.temperature, self.generator
            )
            for name in self.heads
        )
        return self.weight * total / len(self.heads)
