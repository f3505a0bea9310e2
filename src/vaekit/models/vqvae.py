"""VQ-VAE (van den Oord et al. 2017, "Neural discrete representation learning").

The encoder's output (B, L) is cut into P = L / D vectors of dimension D (``--code-dim``), and each
is replaced by its nearest entry of a codebook of K vectors (``--codebook-size``). The decoder sees
the quantised code; gradients pass the quantisation unchanged (straight-through). The loss is

    -log p(x | z_q) + commitment |z_e - sg(z_q)|^2      (their eq. 3, summed over the code)

and the codebook follows the encoder outputs assigned to it by exponential moving averages (their
appendix A.1): with assignments n_k and sums s_k of a batch, N_k <- g N_k + (1 - g) n_k,
m_k <- g m_k + (1 - g) s_k, e_k = m_k / N~_k, where N~ is N with Laplace smoothing
(N_k + eps) / (sum N + K eps) * sum N, so an unused entry never divides by zero.

To sample, VQ-VAE needs a prior over codes. The paper fits a PixelCNN; here, a first-order Markov
chain over the P code positions (``vaekit.nn.priors.MarkovCodes``), estimated by counting the codes
of the whole training set (add-1/2 smoothing). The trainer refits it after every epoch (the
``after_epoch`` hook), so every checkpoint holds the prior of its own weights. ``sample_prior``
draws code indices from it and returns their codebook vectors. ``decode(z)`` decodes any vector, quantised or not
(interpolations pass between codebook vectors). ``extras``: ``commitment``, ``perplexity``
(exp of the entropy of the batch's code usage; K when all entries are used evenly).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vaekit.errors import ConfigError
from vaekit.models.base import AutoEncoder, ModelOutput
from vaekit.models.options import FRACTION, NON_NEGATIVE, ModelOptions, at_least, option
from vaekit.nn.distributions import PointMass
from vaekit.nn.priors import MarkovCodes


@dataclass
class VQVAEOptions(ModelOptions):
    codebook_size: int = option(64, "codebook entries", check=at_least(2))
    code_dim: int = option(4, "dimension of each code vector; latent-dim / code-dim codes per image", check=at_least(1))
    commitment: float = option(0.25, "commitment loss weight", check=NON_NEGATIVE)
    ema_decay: float = option(0.99, "decay of the EMA codebook updates", check=FRACTION)

    def validate(self, config) -> None:
        super().validate(config)
        if config.latent_dim % self.code_dim:
            raise ConfigError(f"--latent-dim {config.latent_dim} is not a multiple of --code-dim {self.code_dim}: "
                              "each image gets latent-dim / code-dim code vectors")

EMA_EPS = 1e-5


def nearest_codes(vectors: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook row for each row of ``vectors`` (N, D) -> (N,)."""
    distances = (vectors.pow(2).sum(1, keepdim=True) - 2 * vectors @ codebook.T + codebook.pow(2).sum(1))
    return distances.argmin(1)


def ema_codebook_update(cluster_size, embed_sum, vectors, codes, decay: float, eps: float = EMA_EPS):
    """One EMA step (in place on ``cluster_size`` (K,) and ``embed_sum`` (K, D)); returns the new codebook."""
    k = cluster_size.shape[0]
    onehot = F.one_hot(codes, k).to(vectors.dtype)                        # (N, K)
    cluster_size.mul_(decay).add_(onehot.sum(0), alpha=1 - decay)
    embed_sum.mul_(decay).add_(onehot.T @ vectors, alpha=1 - decay)
    total = cluster_size.sum()
    smoothed = (cluster_size + eps) / (total + k * eps) * total
    return embed_sum / smoothed.unsqueeze(1)


class VQVAE(AutoEncoder):
    generative = True
    priors = ("markov-codes",)
    default_prior = "markov-codes"
    # Weights renamed since version 0.1 (old name -> new): the code prior became an object.
    renamed_weights = {"prior_first": "prior.first", "prior_transition": "prior.transition",
                       "prior_fitted": "prior.fitted"}
    # DDP broadcasts rank 0's buffers before each forward pass, so the codebook's moving averages
    # would learn from rank 0's share of every batch only.
    single_process_reason = ("its codebook is updated by moving averages in the forward pass, which "
                             "DistributedDataParallel does not reduce across processes")
    evaluation_notes = ("vq-vae has discrete codes and a deterministic encoder: it defines no ELBO or likelihood "
                        "bound (kl, nelbo, nll, bits_per_dim are null); recon is the loss at the quantised code, "
                        "prior samples come from the Markov-chain prior over codes fitted to the training set",)

    def __init__(self, config, sample_shape, *, class_names=None):
        super().__init__(config, sample_shape, class_names=class_names)
        self.code_dim = int(self.options.code_dim)
        self.positions = config.latent_dim // self.code_dim
        k = int(self.options.codebook_size)
        codebook = torch.randn(k, self.code_dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("cluster_size", torch.ones(k))
        self.register_buffer("embed_sum", codebook.clone())

    def build_prior(self, name: str) -> MarkovCodes:
        positions = self.latent_dim // int(self.options.code_dim)
        return MarkovCodes(self.latent_dim, self.options.codebook_size, positions, self.lookup)

    # -- quantisation ------------------------------------------------------------------------------
    def code_indices(self, z_e: torch.Tensor) -> torch.Tensor:
        """(B, L) encoder outputs -> (B, P) codebook indices."""
        return nearest_codes(z_e.reshape(-1, self.code_dim), self.codebook).view(z_e.shape[0], self.positions)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, P) indices -> (B, L) codebook vectors."""
        return self.codebook[indices].reshape(indices.shape[0], -1)

    def encode(self, x):
        return PointMass(self.lookup(self.code_indices(self.encoder(x))))

    def forward(self, x, *, beta=None, generator=None, step=None, y=None) -> ModelOutput:
        z_e = self.encoder(x)
        indices = self.code_indices(z_e)
        z_q = self.lookup(indices)
        if self.training:
            with torch.no_grad():
                self.codebook.copy_(ema_codebook_update(self.cluster_size, self.embed_sum,
                                                        z_e.detach().reshape(-1, self.code_dim), indices.reshape(-1),
                                                        float(self.options.ema_decay)))
        commitment = (z_e - z_q.detach()).pow(2).sum(1).mean()
        straight_through = z_e + (z_q - z_e).detach()
        recon = -self.log_likelihood(x, straight_through).mean()
        usage = torch.bincount(indices.reshape(-1), minlength=self.codebook.shape[0]).to(z_e.dtype)
        usage = usage / usage.sum()
        perplexity = torch.exp(-(usage * torch.log(usage.clamp_min(1e-12))).sum())
        return ModelOutput(loss=recon + float(self.options.commitment) * commitment, recon=recon,
                           extras={"commitment": commitment.detach(), "perplexity": perplexity})

    # -- the prior over codes ----------------------------------------------------------------------
    @torch.no_grad()
    def after_epoch(self, batches) -> None:
        """Refit the Markov-chain prior to the codes of the training images in ``batches``."""
        was_training = self.training
        self.eval()
        self.prior.fit(self.code_indices(self.encoder(x)) for x in batches)
        self.train(was_training)
