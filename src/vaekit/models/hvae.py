"""A two-level hierarchical VAE with ladder-style inference (Sønderby et al. 2016, "Ladder
variational autoencoders").

Generative model, top down:  z2 ~ p(z2),  z1 ~ p(z1 | z2) = N(mu_p(z2), sigma_p^2(z2)),  x ~ p(x | z1),
or x ~ p(x | z1, z2) with ``--decoder-reads both`` (the decoder reads the concatenation [z1, z2]),
with p(z2) = N(0, I), or a VampPrior over the top level (``--prior vamp``: Tomczak & Welling 2018's
HVAE, whose p(z2) mixes q(z2 | u_k) over learned pseudo-inputs). The prior object is
``vaekit.nn.priors.TopDown``.

Inference: a deterministic bottom-up pass d = f(x) gives q(z2 | x). Then, by ``--inference``:

- ``ladder`` (the default): d also gives a bottom-up estimate N(mu_hat, sigma_hat^2) for z1; going
  down, it is merged with the generative p(z1 | z2) by precision weighting (their eq. 17-19,
  ``DiagonalGaussian.precision_weighted``), so q(z1 | x, z2) shares the top-down path with the
  generative model;
- ``conditional``: q(z1 | x, z2) is a network of its own, one hidden layer of ``--arch``'s units over
  [d, z2], and p(z1 | z2) has two hidden layers of them: Tomczak & Welling's HVAE, whose q(z1|x, z2)
  and p(z1|z2) are gated networks (theirs reads x through a layer of its own; this one reads d).

The ELBO is

    E_q[ log p(x|z1) + log p(z1|z2) + log p(z2) - log q(z1|x,z2) - log q(z2|x) ],

whose KL part is KL(q(z2|x) || p(z2)) + E_q(z2|x) KL(q(z1|x,z2) || p(z1|z2)): the second closed form
per dimension given the sampled z2, the first too for N(0, I) (else its one-sample estimate). The
importance-weighted bound uses the same proposal q(z1, z2 | x) = q(z2|x) q(z1|x,z2) through
``log_importance_weights``; with ``--iw-k K`` (K > 1) training maximises that K-sample bound (Burda et
al. 2016, eq. 8) in place of the ELBO.

The code the latent toolkit sees is the concatenation z = [z1, z2] (``--latent-dim`` in total,
``--top-latent-dim`` of it for z2): ``decode(z)`` decodes z1 (or both levels), the prior scores and samples both
levels, and ``encode(x)`` returns q(z1 | x, z2 = E[z2|x]) next to q(z2|x) (a diagonal summary for
plots; evaluation uses the exact two-level proposal).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from vaekit.errors import ConfigError
from vaekit.models.base import ModelOutput
from vaekit.models.iwae import check_sample_memory, training_note
from vaekit.models.options import FINITE, at_least, option
from vaekit.models.vae import VAE, VAEOptions
from vaekit.nn.distributions import DiagonalGaussian, log_mean_exp
from vaekit.nn.networks import build_networks, dense_stack, gate_units
from vaekit.nn.priors import TopDown, build_prior

DECODER_INPUTS = ("z1", "both")
INFERENCES = ("ladder", "conditional")


@dataclass
class HierarchicalVAEOptions(VAEOptions):
    top_latent_dim: int | None = option(None, "dimensions of the top level z2; z1 gets the rest of --latent-dim",
                                        computed="half of --latent-dim")
    min_logvar: float | None = option(None, "floor of the log-variances of q(z2|x), q(z1|x, z2) (or the ladder's "
                                      "bottom-up estimate) and p(z1|z2), as Tomczak & Welling's HVAE (-6); without it "
                                      "p(z1|z2) can drive a log-variance past float32's range, and the loss becomes NaN",
                                      check=FINITE)
    decoder_reads: str = option("z1", "what the decoder p(x|.) reads: z1 (ladder-style, Sønderby et al.) or both "
                                "levels [z1, z2] (Tomczak & Welling's HVAE, p(x|z1, z2))", choices=DECODER_INPUTS)
    inference: str = option("ladder", "how q(z1|x, z2) is formed: ladder (a bottom-up estimate merged with p(z1|z2) "
                            "by precision weighting, Sønderby et al.) or conditional (a network of its own over the "
                            "bottom-up features and z2, and p(z1|z2) of two hidden layers, as Tomczak & Welling's "
                            "HVAE)", choices=INFERENCES)
    iw_k: int = option(1, "importance samples K of the training bound: 1 trains on the ELBO; K > 1 on the "
                       "K-sample importance-weighted bound of Burda et al. over the two-level proposal (the KL "
                       "weight of the warm-up scales each sample's log p(z1, z2) - log q(z1, z2|x))", check=at_least(1))

    def resolve(self, config) -> "HierarchicalVAEOptions":
        top = max(1, config.latent_dim // 2) if self.top_latent_dim is None else self.top_latent_dim
        return replace(self, top_latent_dim=top)

    def validate(self, config) -> None:
        super().validate(config)
        if self.top_latent_dim is not None and not 1 <= self.top_latent_dim < config.latent_dim:
            raise ConfigError(f"--top-latent-dim must be between 1 and --latent-dim - 1 = {config.latent_dim - 1} "
                              f"(hvae splits --latent-dim between its two levels), not {self.top_latent_dim}")
        if self.iw_k > 1 and self.free_bits:
            raise ConfigError("--free-bits applies to the ELBO's KL per dimension: use it with --iw-k 1, not "
                              f"--iw-k {self.iw_k}")


class ConditionalHead(nn.Module):
    """The parameters of q(z1 | x, z2) from the bottom-up features d (B, F) and z2 (B, L2) or (n, B, L2):
    one hidden layer of ``arch``'s units over [d, z2], then a Linear. The hidden layer's product is
    written A d + B z2 + c, the same map as one Linear over the concatenation, so that d's part is
    computed once per input and not once per sample of z2 (the importance-weighted bound draws thousands)."""

    def __init__(self, arch: str, features: int, top_dim: int, width: int, out: int):
        super().__init__()
        self.gated = arch == "gated"
        units = 2 * width if self.gated else width      # gated: rows [W; V] as GatedDense
        self.from_features = nn.Linear(features, units)
        self.from_top = nn.Linear(top_dim, units, bias=False)
        self.out = nn.Linear(width, out)

    def forward(self, d: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        h = self.from_features(d) + self.from_top(z2)    # (B, U) broadcasts over (n, B, U)
        return self.out(gate_units(h) if self.gated else torch.relu(h))


class HierarchicalVAE(VAE):
    joint_proposal = True

    @property
    def evaluation_notes(self) -> tuple[str, ...]:
        notes = ("two latent levels: kl is the Monte-Carlo estimate of KL(q(z1,z2|x) || p(z1,z2)) over the "
                 "evaluation's K samples (kl_per_dim is not reported); nll uses the two-level proposal q(z2|x) q(z1|x,z2)",)
        if self.options.iw_k > 1:
            notes += (training_note(int(self.options.iw_k)),)
        return notes

    def __init__(self, config, sample_shape, *, class_names=None):
        super().__init__(config, sample_shape, class_names=class_names)
        width = max(64, 4 * config.latent_dim)
        # The bottom-up features d come from the configured encoder; the decoder reads z1, or z1 and z2.
        decoder_in = self.latent_dim if self.options.decoder_reads == "both" else self.bottom_dim
        self.encoder, self.decoder = build_networks(config.arch, self.sample_shape, decoder_in, width,
                                                    self.likelihood.params_per_value, config.hidden, config.channels)
        # The order of registration is the order of the optimizer's state in a checkpoint: keep it.
        if self.ladder:
            self.bottom_head = nn.Sequential(nn.ReLU(), nn.Linear(width, 2 * self.bottom_dim))
        self.top_head = nn.Sequential(nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2 * self.top_dim))
        if self.ladder:
            self.top_down = nn.Sequential(nn.Linear(self.top_dim, width), nn.ReLU(),
                                          nn.Linear(width, 2 * self.bottom_dim))
        else:
            self.z1_head = ConditionalHead(config.arch, width, self.top_dim, width, 2 * self.bottom_dim)
            self.top_down = dense_stack(config.arch, [self.top_dim, width, width, 2 * self.bottom_dim])

    @property
    def ladder(self) -> bool:
        """Ladder inference (a bottom-up estimate merged with p(z1|z2)), else a conditional network."""
        return self.options.inference == "ladder"

    @property
    def top_dim(self) -> int:
        return int(self.options.top_latent_dim)

    @property
    def bottom_dim(self) -> int:
        return self.latent_dim - self.top_dim

    def build_prior(self, name: str) -> TopDown:
        top = build_prior(name, self.top_dim, sample_shape=self.sample_shape, pseudo_inputs=self.config.pseudo_inputs,
                          encode=self.top_posterior)
        return TopDown(top, self.bottom_dim, self.conditional_prior)

    # -- the two levels ----------------------------------------------------------------------------
    def divergence_advice(self) -> str:
        advice = super().divergence_advice()
        return advice if self.options.min_logvar is not None else f"set --min-logvar -6, or {advice}"

    def _gaussian(self, params: torch.Tensor) -> DiagonalGaussian:
        """The Gaussian of a head's output [mean, log-variance], the log-variance floored at --min-logvar."""
        mean, logvar = params.chunk(2, -1)
        floor = self.options.min_logvar
        return DiagonalGaussian(mean, logvar if floor is None else logvar.clamp(min=floor))

    def bottom_up(self, x) -> tuple[DiagonalGaussian, DiagonalGaussian | torch.Tensor]:
        """(q(z2|x), what q(z1|x, z2) reads of x): the ladder's bottom-up estimate for z1, or the
        features d themselves for conditional inference."""
        d = self.encoder(x)
        q2 = self._gaussian(self.top_head(d))
        return q2, (self._gaussian(self.bottom_head(d)) if self.ladder else d)

    def bottom_posterior(self, context, z2, p1: DiagonalGaussian) -> DiagonalGaussian:
        """q(z1 | x, z2) from ``bottom_up``'s context for x (B, ...) and z2 with its p(z1|z2), both
        (B, ...) or (n, B, ...)."""
        if self.ladder:
            return context.precision_weighted(p1)                          # broadcasts over n
        return self._gaussian(self.z1_head(context, z2))

    def top_posterior(self, x) -> DiagonalGaussian:
        """q(z2|x): what a VampPrior on the top level mixes."""
        return self.bottom_up(x)[0]

    def conditional_prior(self, z2) -> DiagonalGaussian:
        """p(z1 | z2)."""
        return self._gaussian(self.top_down(z2))

    # -- the toolkit interface ---------------------------------------------------------------------
    def encode(self, x) -> DiagonalGaussian:
        q2, context = self.bottom_up(x)
        q1 = self.bottom_posterior(context, q2.mean, self.conditional_prior(q2.mean))
        return DiagonalGaussian(torch.cat([q1.mean, q2.mean], -1), torch.cat([q1.logvar, q2.logvar], -1))

    def decode_levels(self, z1, z2):
        """Likelihood parameters of p(x | z1), or of p(x | z1, z2) with ``--decoder-reads both``."""
        return self.decoder(torch.cat([z1, z2], -1) if self.options.decoder_reads == "both" else z1)

    def decoder_params(self, z):
        return self.decode_levels(z[..., :self.bottom_dim], z[..., self.bottom_dim:])

    # -- bounds ------------------------------------------------------------------------------------
    def _weighted_samples(self, x, noise):
        """The two-level proposal's samples for noise (n, B, L), scored: log p(x|z1, z2), log p(z1|z2) -
        log q(z1|x, z2) and log p(z2) - log q(z2|x), each (n, B), and q(z1|x, z2), p(z1|z2) themselves."""
        n, batch = noise.shape[:2]
        q2, context = self.bottom_up(x)
        eps1, eps2 = self.prior.split(noise)
        z2 = q2.reparameterize(eps2)                                          # (n, B, L2)
        p1 = self.conditional_prior(z2)
        q1 = self.bottom_posterior(context, z2, p1)
        z1 = q1.reparameterize(eps1)
        targets = x.unsqueeze(0).expand(n, *x.shape).reshape(n * batch, *x.shape[1:])
        params = self.decode_levels(z1.reshape(n * batch, -1), z2.reshape(n * batch, -1))
        log_px_z = self.likelihood.log_prob(params, targets).view(n, batch)
        return (log_px_z, p1.log_prob(z1) - q1.log_prob(z1), self.prior.top.log_prob(z2) - q2.log_prob(z2),
                q1, p1)

    def log_importance_weights(self, x, noise):
        """log p(x|z1) and log w = log p(x, z1, z2) - log q(z1, z2 | x) for noise (n, B, L), each (n, B)."""
        log_px_z, ratio_bottom, ratio_top, _, _ = self._weighted_samples(x, noise)
        return log_px_z, log_px_z + ratio_bottom + ratio_top

    def prepare_training(self, n_train: int, steps_per_epoch: int) -> None:
        super().prepare_training(n_train, steps_per_epoch)
        if self.options.iw_k > 1:
            check_sample_memory(self, int(self.options.iw_k), n_train)

    def _importance_weighted(self, x, weight, generator) -> ModelOutput:
        """-L_K, with the KL weight on each sample's log-ratio of prior to proposal:
        log w_k = log p(x|z_k) + weight * (log p(z_k) - log q(z_k|x)); at weight 1, the K-sample bound.
        ``recon`` and ``kl`` are the ELBO's parts over the K samples (the bottom level's KL closed form
        given each z2, the top level's a Monte-Carlo estimate)."""
        noise = self.iw_noise(int(self.options.iw_k), x.shape[0], generator, x.device)
        log_px_z, ratio_bottom, ratio_top, q1, p1 = self._weighted_samples(x, noise)
        bound = log_mean_exp(log_px_z + weight * (ratio_bottom + ratio_top)).mean()
        kl1 = q1.kl_per_dim(p1).mean((0, 1))
        kl_top = -ratio_top.mean()
        return ModelOutput(loss=-bound, recon=-log_px_z.mean(), kl=kl1.sum() + kl_top, kl_per_dim=None,
                           extras={"kl_top": kl_top, "kl_bottom": kl1.sum(), "iw_bound": bound})

    def forward(self, x, *, beta=None, generator=None, step=None, y=None) -> ModelOutput:
        weight = self.beta if beta is None else beta
        if self.options.iw_k > 1:
            return self._importance_weighted(x, weight, generator)
        q2, context = self.bottom_up(x)
        z2 = q2.sample(generator=generator)
        p1 = self.conditional_prior(z2)
        q1 = self.bottom_posterior(context, z2, p1)
        z1 = q1.sample(generator=generator)
        recon = -self.likelihood.log_prob(self.decode_levels(z1, z2), x).mean()
        kl1 = q1.kl_per_dim(p1).mean(0)
        top = self.prior.top
        if top.closed_form:
            kl2 = top.kl_per_dim(q2).mean(0)
            kl_per_dim = torch.cat([kl1, kl2])
            kl_top, kl, penalty = kl2.sum(), kl_per_dim.sum(), self._free_bits(kl_per_dim)
        else:
            kl_per_dim = None
            kl_top = top.kl(q2, z2).mean()
            kl, penalty = kl1.sum() + kl_top, self._free_bits(kl1) + kl_top
        return ModelOutput(loss=recon + weight * penalty, recon=recon, kl=kl, kl_per_dim=kl_per_dim,
                           extras={"kl_top": kl_top, "kl_bottom": kl1.sum()})

    @property
    def per_dim_kl(self) -> bool:
        return True        # the bottom level's KL is closed form per dimension whatever the top prior

    def _free_bits(self, kl_per_dim: torch.Tensor) -> torch.Tensor:
        return kl_per_dim.clamp(min=self.free_bits).sum() if self.free_bits else kl_per_dim.sum()
