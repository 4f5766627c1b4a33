"""GRM's adaptive token division: the division predictor, the token policy, the attention mask that keeps
the template and the search-only tokens apart, and the masked softmax.

In every dividing block (all but the first), each search token is sent to one of two groups from its own
feature and a target representation pooled from the template tokens:

* class 0, "S": search-only tokens, which attend to (and are attended by) search tokens only;
* class 1, "A": tokens that attend to everything and are attended by everything.

Template tokens form the third group, "T". The policy of a token is a one-hot row over (T, S, A); the
attention mask allows T<->T, S<->S and X<->A / A<->X for any X, and forbids T<->S. The mask enters
the softmax multiplicatively (:func:`softmax_with_policy`), with a small ``eps / N`` weight left on the
masked entries, exactly as the official code computes it.

Only the plain pieces live here; the ViT blocks, patch embedding and position embeddings are those of
:mod:`lib.models.backbones.vit`, whose :class:`~lib.models.backbones.vit.Attention` this module's
:class:`DivisionAttention` extends.

Source: GRM ``lib/models/grm/vit.py`` (``Attention`` with ``divide=True``, ``early=True``,
``gauss=False``; ``softmax_with_policy``), Little-Podi/GRM @ 466ceb7. Paper: Gao et al., "Generalized
Relation Modeling for Transformer Tracking", CVPR 2023, Sec. 3.2-3.3.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from lib.models.backbones.vit import Attention

__all__ = ["DivisionAttention", "division_predictor", "target_representation", "divide_tokens", "token_policy",
           "policy_attention_mask", "softmax_with_policy", "TGT_TYPES"]

#: the ways of pooling the target representation from the template tokens (``MODEL.TGT_TYPE``).
TGT_TYPES = ("allmax", "allavg", "roimax", "roiavg")


def division_predictor(dim: int) -> nn.Sequential:
    """The per-token two-class predictor ``divide_predict``: ``Linear(2C, 384) - GELU - Linear(384, 192) -
    GELU - Linear(192, 2) - LogSoftmax``; input ``(B, N_x, 2C)`` = [search token ; target representation],
    output ``(B, N_x, 2)`` log-probabilities of (search-only, attend-to-all). The hidden widths 384/192
    are fixed, also for ViT-L (official ``early=True`` layout)."""
    return nn.Sequential(nn.Linear(2 * dim, 384), nn.GELU(), nn.Linear(384, 192), nn.GELU(), nn.Linear(192, 2),
                         nn.LogSoftmax(dim=-1))


def target_representation(template_tokens: torch.Tensor, tgt_type: str,
                          template_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Pool the template tokens ``(B, N_z, C)`` into one target token ``(B, 1, C)``.

    ``allmax`` / ``allavg``: channel-wise max / mean over all template tokens; ``roimax`` / ``roiavg``: the
    same after multiplying the tokens by the template box mask ``template_mask`` ``(B, N_z)`` (float, 1 inside
    the box), so the tokens outside count as zeros.

    Raises:
        ValueError: unknown ``tgt_type``, or a roi type without ``template_mask``.
    """
    if tgt_type not in TGT_TYPES:
        raise ValueError(f"MODEL.TGT_TYPE '{tgt_type}' is not supported (known: {', '.join(TGT_TYPES)})")
    if tgt_type.startswith("roi"):
        if template_mask is None:
            raise ValueError(f"MODEL.TGT_TYPE '{tgt_type}' needs the template box mask (template_mask)")
        template_tokens = template_tokens * template_mask.unsqueeze(-1)
    pool = F.adaptive_max_pool1d if tgt_type.endswith("max") else F.adaptive_avg_pool1d
    return pool(template_tokens.transpose(1, 2), output_size=1).transpose(1, 2)


def divide_tokens(log_probs: torch.Tensor, training: bool, threshold: float = 0.0) -> torch.Tensor:
    """One-hot division decisions ``(B, N_x, 2)`` from the predictor's log-probabilities ``(B, N_x, 2)``.

    * training: ``F.gumbel_softmax(log_probs, tau=1, hard=True)`` (straight-through one-hot, float);
    * eval, ``threshold`` 0: the more probable class (official: first index of a descending ``argsort``);
    * eval, ``threshold`` > 0: class 1 (attend-to-all) iff ``softmax(log_probs)[..., 0] < threshold``.

    The eval decisions are int64 one-hot rows, as officially.
    """
    if training:
        return F.gumbel_softmax(log_probs, hard=True)
    if threshold:
        rank = (F.softmax(log_probs, dim=-1)[:, :, 0] < threshold).long()
    else:
        rank = torch.argsort(log_probs, dim=-1, descending=True)[:, :, 0]
    return F.one_hot(rank, num_classes=2)


def token_policy(decision: torch.Tensor, num_template: int) -> torch.Tensor:
    """The policy ``(B, N_z + N_x, 3)`` over the groups (T, S, A): template rows ``(1, 0, 0)``, search rows
    ``(0, d_0, d_1)`` with ``d`` the one-hot decision ``(B, N_x, 2)``. Float, the decision's gradient kept
    (training)."""
    B, n_search, _ = decision.shape
    dtype = decision.dtype if decision.is_floating_point() else torch.get_default_dtype()
    template_policy = torch.zeros(B, num_template, 3, dtype=dtype, device=decision.device)
    template_policy[:, :, 0] = 1
    blank = torch.zeros(B, n_search, 1, dtype=dtype, device=decision.device)
    return torch.cat([template_policy, torch.cat([blank, decision.to(dtype)], dim=-1)], dim=1)


def policy_attention_mask(policy: torch.Tensor) -> torch.Tensor:
    """Attention mask ``(B, 1, N, N)`` (1 = query row may attend to key column) of a policy ``(B, N, 3)``.

    ``M = T T^T + S S^T + (T A^T + S A^T + A A^T + A T^T + A S^T)`` (outer products of the policy
    columns, summed in the official order so that the training gradients agree too), then the diagonal
    is set to 1.
    """
    B, N, _ = policy.shape
    t, s, a = (policy[:, :, i] for i in range(3))

    def outer(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return u.reshape(B, 1, N, 1) @ v.reshape(B, 1, 1, N)

    mask = outer(t, t) + outer(s, s) + (outer(t, a) + outer(s, a) + outer(a, a) + outer(a, t) + outer(a, s))
    eye = torch.eye(N, dtype=mask.dtype, device=mask.device).view(1, 1, N, N)
    return mask + (1.0 - mask) * eye


def softmax_with_policy(logits: torch.Tensor, policy: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Masked softmax of GRM over attention logits ``(B, H, N, N)`` with a policy ``(B, N, 3)``.

    ``e = exp(logits - max_j logits) * M`` in float32 (the row max is over all entries, masked ones
    included), then ``(e + eps / N) / (sum_j e + eps)``, cast back to the logits' dtype. Rows still sum
    to 1, but a masked entry keeps the small weight ``eps / N / (sum_j e + eps)`` (about ``1e-6 / N``),
    as in the official code.

    Args:
        logits: ``q k^T / sqrt(D)``, ``(B, H, N, N)``.
        policy: ``(B, N, 3)`` one-hot rows over (template, search-only, attend-to-all).
        eps: the official 1e-6.

    Returns:
        attention weights ``(B, H, N, N)``.

    Why not ``F.scaled_dot_product_attention`` (issue 10): these weights are
    ``softmax_j(log(exp(l_j - m) M_j + eps / N))`` with ``m`` the row maximum over ALL logits, masked ones
    included. A boolean or additive mask gives ``softmax_j(l_j + log M_j)`` instead, which differs by about
    ``eps / (N * sum_j e_j)``: negligible when an allowed logit is the row maximum, but not bounded (a masked
    maximum far above every allowed logit makes ``sum_j e_j`` tiny and the eps leakage dominant). No mask that
    is independent of the logits reproduces the official weights, so the explicit masked softmax stays; the
    plain block 0 of GRM runs through the fused kernel (:class:`~lib.models.backbones.vit.Attention`).
    """
    N = logits.shape[-1]
    mask = policy_attention_mask(policy)
    max_logit, _ = torch.max(logits, dim=-1, keepdim=True)
    e = (logits - max_logit).to(torch.float32).exp_() * mask.to(torch.float32)
    attn = (e + eps / N) / (e.sum(dim=-1, keepdim=True) + eps)
    return attn.type_as(max_logit)


class DivisionAttention(Attention):
    """Multi-head self-attention with GRM's adaptive token division (a dividing block's ``attn``).

    Adds ``divide_predict`` (:func:`division_predictor`, registered after ``qkv``/``proj`` as officially)
    to :class:`~lib.models.backbones.vit.Attention` and replaces its softmax by
    :func:`softmax_with_policy`. Same constructor arguments as the plain attention.

    ``forward(x, template_mask, search_feat_len, threshold, tgt_type)``: ``x`` ``(B, N_z + N_x, C)`` (the
    normalised block input; search tokens last, ``N_x = search_feat_len``). The target representation
    (:func:`target_representation` of the template tokens) is appended to each search token, the
    predictor gives log-probabilities ``(B, N_x, 2)``, :func:`divide_tokens` the one-hot decisions
    (Gumbel-softmax in train mode, hard with ``threshold`` in eval), :func:`token_policy` and the masked
    softmax the attention. Returns ``(out (B, N, C), decision (B, N_x, 2))``.
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop)
        self.divide_predict = division_predictor(dim)

    def predict_division(self, x: torch.Tensor, search_feat_len: int, tgt_type: str,
                         template_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Log-probabilities ``(B, N_x, 2)`` of (search-only, attend-to-all) for every search token of ``x``."""
        target = target_representation(x[:, :-search_feat_len], tgt_type, template_mask)
        target = target.expand(-1, search_feat_len, -1)
        return self.divide_predict(torch.cat((x[:, -search_feat_len:], target), dim=-1))

    def forward(self, x: torch.Tensor, template_mask: Optional[torch.Tensor] = None, search_feat_len: int = 0,
                threshold: float = 0.0, tgt_type: str = "allmax") -> Tuple[torch.Tensor, torch.Tensor]:
        if not 0 < search_feat_len < x.shape[1]:
            raise ValueError(f"search_feat_len {search_feat_len} must count the search tokens among the "
                             f"{x.shape[1]} tokens")
        log_probs = self.predict_division(x, search_feat_len, tgt_type, template_mask)
        decision = divide_tokens(log_probs, self.training, threshold)
        policy = token_policy(decision.to(log_probs.dtype), x.shape[1] - search_feat_len)
        q, k, v = self.project_qkv(x)
        attn = softmax_with_policy(self.attention_logits(q, k), policy)
        attn = self.attn_drop(attn)
        return self.project_out(attn @ v), decision
