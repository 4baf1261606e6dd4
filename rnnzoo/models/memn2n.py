"""End-To-End Memory Network for bAbI question answering: the model of Sukhbaatar et al. 2015, "End-To-End
Memory Networks" (arXiv:1503.08895), at full breadth.

babi_memnn ports Keras' single-hop simplification, which reads the story word by word; this is the paper's
model. The memory holds the story's sentences (its last 50), each as the sum of its word vectors, weighted by
their place in the sentence (position encoding, PE) and given a vector for its age (temporal encoding). The
question's vector u reads the memory K times (hops): a softmax over the sentences of the match m_i . u picks
where to look, the output vectors c_i are added up with those weights into o, and u + o asks the next hop.
The answer is a softmax over the vocabulary of W (u + o) after the last hop. The slots of a story shorter than
the memory hold zero vectors, which the softmax attends to like the others (a place to look at nothing), as in
the authors' code; `empty_memories="masked"` leaves them out instead.

Weights are tied across hops in one of the paper's two ways: adjacent (the output embedding of hop k is the
input embedding of hop k+1, the question embedding is the first input embedding and the answer matrix the
last output embedding) or layer-wise (one input and one output embedding for all hops, and a linear map H
between the hops: u <- H u + o). Two training aids live in the model, so that the shared loop needs no
special case: random noise (while training, each story's sentences get ages as if about 10% more, empty,
sentences sat among them, which keeps the temporal vectors from learning positions by heart) and the
`linear` switch of linear start (LS: the softmaxes of the hops are left out until the spec turns them on).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnzoo.models.layers import Tap


def position_encoding_weights(words: Tensor, dim: int, length: int | None = None) -> Tensor:
    """(..., W) word indices -> (..., W, dim) weights of the paper's position encoding,
    l_kj = (1 - j/J) - (k/d)(1 - 2j/J), where j = 1..J numbers the sentence's words in order (padding, index 0,
    is skipped and weighs 0), J is the sentence's length and k = 1..d the component of the word vector.
    (`length` is unused: the code's formula below takes it.)"""
    present = words.ne(0)
    j = present.cumsum(-1).float().unsqueeze(-1)  # (..., W, 1): 1 for the first word
    J = present.sum(-1, keepdim=True).clamp(min=1).float().unsqueeze(-1)  # (..., 1, 1)
    k = torch.arange(1, dim + 1, device=words.device, dtype=torch.float32) / dim  # (d,)
    weights = (1 - j / J) - k * (1 - 2 * j / J)  # (..., W, d)
    return weights * present.unsqueeze(-1)


def code_position_encoding_weights(words: Tensor, dim: int, length: int | None = None) -> Tensor:
    """(..., W) word indices -> (..., W, dim) weights of the position encoding in the authors' code,
    l_kj = 1 + 4 (k - (d+1)/2) (j - (J+1)/2) / (d J), where j = 1..  numbers the sentence's words in order
    (padding weighs 0) and J is one length for every sentence and question (`length`, the task's longest;
    W if not given). It is about twice the paper's formula, with J fixed; with it, and the other details of
    that code, QA16 is learnt (99.6% against 45%: docs/RESULTS.md)."""
    present = words.ne(0)
    j = present.cumsum(-1).float().unsqueeze(-1)  # (..., W, 1): 1 for the first word
    J = float(length or words.shape[-1])
    k = torch.arange(1, dim + 1, device=words.device, dtype=torch.float32)  # (d,)
    weights = 1 + 4 * (k - (dim + 1) / 2) * (j - (J + 1) / 2) / (dim * J)  # (..., W, d)
    return weights * present.unsqueeze(-1)


def bag_of_words_weights(words: Tensor, dim: int, length: int | None = None) -> Tensor:
    """(..., W) word indices -> (..., W, dim) weights 1 for a word, 0 for padding: the paper's BoW sentences."""
    return words.ne(0).float().unsqueeze(-1).expand(*words.shape, dim)


class MemN2N(nn.Module):
    def __init__(self, vocab_size: int, memory_size: int, embedding_dim: int = 20, hops: int = 3,
                 weight_tying: str = "adjacent", position_encoding: bool = True, temporal_encoding: bool = True,
                 random_noise: float = 0.1, init_std: float = 0.1, position_formula: str = "code",
                 empty_memories: str = "attended") -> None:
        super().__init__()
        if weight_tying not in ("adjacent", "layerwise"):
            raise ValueError(f"weight_tying must be 'adjacent' or 'layerwise', got {weight_tying!r}")
        if position_formula not in ("code", "paper") or empty_memories not in ("attended", "masked"):
            raise ValueError(f"position_formula must be 'code' or 'paper' and empty_memories 'attended' or "
                             f"'masked', got {position_formula!r} and {empty_memories!r}")
        if hops < 1 or memory_size < 1:
            raise ValueError(f"need hops >= 1 and memory_size >= 1, got {hops} and {memory_size}")
        V, M, d = vocab_size, memory_size, embedding_dim
        self.hops, self.memory_size, self.random_noise = hops, memory_size, random_noise
        formula = code_position_encoding_weights if position_formula == "code" else position_encoding_weights
        self.word_weights = formula if position_encoding else bag_of_words_weights
        # Slots of a story shorter than the memory: zero vectors that the softmax attends to like any other (so
        # they offer a place to look at nothing, as in the authors' code), or left out of it (masked).
        self.masked = empty_memories == "masked"
        # The memory embeddings, and which of them each hop reads: adjacent, E_0 .. E_K with A^k = E_{k-1} and
        # C^k = E_k (B = E_0, W = E_K); layer-wise, one A and one C for every hop (B, W and H of their own).
        adjacent = weight_tying == "adjacent"
        n = hops + 1 if adjacent else 2
        self.embeddings = nn.ModuleList(nn.Embedding(V, d) for _ in range(n))
        self.temporal = nn.ModuleList(nn.Embedding(M, d) for _ in range(n)) if temporal_encoding else None
        self.input_index = list(range(hops)) if adjacent else [0] * hops
        self.output_index = list(range(1, hops + 1)) if adjacent else [1] * hops
        self.query_embedding = None if adjacent else nn.Embedding(V, d)
        self.answer_weight = None if adjacent else nn.Parameter(torch.empty(V, d))
        self.hop_map = None if adjacent else nn.Linear(d, d, bias=False)  # the paper's H
        self.question_sum, self.sentence_sum, self.add_time = Tap("Add"), Tap("Add"), Tap("Add")
        self.match, self.attention, self.read_out = Tap("Dot"), Tap("Activation"), Tap("Dot")
        self.update, self.answer = Tap("Add"), Tap("Dense")
        # Linear start: 1 while the hops' softmaxes are left out (a buffer, so checkpoints keep the mode).
        self.register_buffer("linear", torch.zeros((), dtype=torch.int64))
        for p in self.parameters():  # the paper's initialization: a Gaussian of mean 0 and std 0.1
            nn.init.normal_(p, 0.0, init_std)

    def forward(self, story: Tensor, question: Tensor) -> Tensor:
        return self.read(story, question)[0]

    def read(self, story: Tensor, question: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The logits (B, V) and each hop's attention over the memory slots (B, M) (with empty_memories "masked",
        0 on the empty slots)."""
        B, M, W = story.shape
        d = self.embeddings[0].embedding_dim
        present = story.ne(0).any(-1)  # (B, M): the slot holds a sentence (the others pad short stories)
        J = max(W, question.shape[1])  # the longest sentence or question: J of the code's position encoding
        query_embedding = self.embeddings[0] if self.query_embedding is None else self.query_embedding
        u = self.question_sum((query_embedding(question) * self.word_weights(question, d, J)).sum(1))  # (B, d)
        weights = self.word_weights(story, d, J)  # (B, M, W, d)
        ages = self.ages(present)  # (B, M): 0 for the newest sentence
        memories = []  # m_i of A^k and c_i of C^k: each embedding's sentence vectors, (B, M, d)
        for k, embedding in enumerate(self.embeddings):
            m = self.sentence_sum((embedding(story) * weights).sum(2))  # (B, M, W, d) -> (B, M, d)
            if self.temporal is not None:
                m = self.add_time(m + self.temporal[k](ages) * present.unsqueeze(-1))  # (B, M, d): 0 if empty
            memories.append(m)
        attention = []
        for hop in range(self.hops):
            m, c = memories[self.input_index[hop]], memories[self.output_index[hop]]  # (B, M, d) each
            scores = self.match(torch.bmm(m, u.unsqueeze(2)).squeeze(2))  # (B, M)
            if self.masked:
                scores = scores.masked_fill(~present, torch.finfo(scores.dtype).min)  # (B, M)
            if torch.compiler.is_exporting():  # a traced graph has no branch on a buffer: both, then the one
                softmax = scores.softmax(-1)
                p = self.attention(torch.where(self.linear.bool(), scores * present, softmax))  # (B, M)
            elif self.linear:
                p = self.attention(scores * present)  # (B, M): linear start, no softmax
            else:
                p = self.attention(scores.softmax(-1))  # (B, M)
            o = self.read_out(torch.bmm(p.unsqueeze(1), c).squeeze(1))  # (B, d)
            u = self.update((u if self.hop_map is None else self.hop_map(u)) + o)  # (B, d)
            attention.append(p)
        answer_weight = self.embeddings[-1].weight if self.answer_weight is None else self.answer_weight
        return self.answer(F.linear(u, answer_weight)), attention  # (B, V) logits

    def ages(self, present: Tensor) -> Tensor:
        """(B, M) the age of each slot's sentence, the index of its temporal vector: 0 for the newest (the last
        slot), counting back; padding slots get ages too, unused.

        Random noise (training only): a story of n sentences gets x ~ U{0, .., ceil(random_noise * n)} empty
        memories at random places among its sentences, which only shifts their ages: the sentences, newest
        first, take a random increasing choice of n ages out of 0 .. n + x - 1 (capped at M - 1)."""
        B, M = present.shape
        ranks = torch.arange(M - 1, -1, -1, device=present.device).expand(B, M)  # (B, M): slot -> rank from newest
        if not (self.training and self.random_noise > 0):
            return ranks
        n = present.sum(1, keepdim=True)  # (B, 1)
        extra = (torch.rand(B, 1, device=present.device) * (torch.ceil(self.random_noise * n) + 1)).floor()
        L = M + math.ceil(self.random_noise * M)  # the most ages a story can spread over
        positions = torch.arange(L, device=present.device).expand(B, L)  # (B, L)
        keys = torch.rand(B, L, device=present.device).masked_fill(positions >= n + extra, 2.0)  # (B, L)
        chosen = keys.argsort(1).argsort(1) < n  # (B, L): n random positions below n + x
        by_rank = torch.where(chosen, positions, L).sort(1).values[:, :M].clamp(max=M - 1)  # (B, M): rank -> age
        return by_rank.gather(1, ranks)  # (B, M): slot -> age
