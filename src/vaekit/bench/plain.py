"""The baselines: the VAE a user would write by hand, in the style of pytorch/examples' ``vae``.

Written for vaekit's benchmark, not copied: the same networks as vaekit's MLP VAE (784-512-16,
ReLU) and default conv VAE (two 4x4 stride-2 convolutions of 32 and 64 channels, mirrored by
transposed convolutions), with separate mean and log-variance heads, a sigmoid output scored by
``F.binary_cross_entropy(..., reduction="sum")``, the KL line of Kingma & Welling (2014, appendix
B), ``torch.optim.Adam`` with its defaults and batches sliced from one tensor (no DataLoader).
The importance-weighted bound is the direct transcription of Burda et al. (2016, eq. 8): repeat
each image K times, decode, ``logsumexp`` the log weights.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2 * math.pi)


class PlainMLPVAE(nn.Module):
    def __init__(self, d: int = 784, hidden: int = 512, latent: int = 16):
        super().__init__()
        self.d = d
        self.fc1 = nn.Linear(d, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, d)

    def encode(self, x):
        h = F.relu(self.fc1(x.view(-1, self.d)))
        return self.fc21(h), self.fc22(h)

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


class PlainConvVAE(nn.Module):
    """28x28 grey images: 1 -> 32 -> 64 channels, 28 -> 14 -> 7 pixels, latent 16."""

    def __init__(self, latent: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 4, stride=2, padding=1)
        self.fc21 = nn.Linear(64 * 7 * 7, latent)
        self.fc22 = nn.Linear(64 * 7 * 7, latent)
        self.fc3 = nn.Linear(latent, 64 * 7 * 7)
        self.deconv1 = nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)
        self.deconv2 = nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1)
        self.d = 784

    def encode(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x.view(-1, 1, 28, 28))))).flatten(1)
        return self.fc21(h), self.fc22(h)

    def decode(self, z):
        h = F.relu(self.fc3(z)).view(-1, 64, 7, 7)
        return torch.sigmoid(self.deconv2(F.relu(self.deconv1(h)))).view(-1, 784)

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, recon_x.shape[-1]), reduction="sum")
    # KL(q || N(0, I)) = -0.5 * sum(1 + log sigma^2 - mu^2 - sigma^2)  (Kingma & Welling 2014, appendix B)
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def train_epoch(model, optimizer, data: torch.Tensor, batch_size: int) -> float:
    """One pass over ``data`` in a fresh random order; returns the mean loss per image."""
    model.train()
    order = torch.randperm(len(data), device=data.device)
    train_loss = 0.0
    for start in range(0, len(data), batch_size):
        x = data[order[start:start + batch_size]]
        optimizer.zero_grad()
        recon, mu, logvar = model(x)
        loss = loss_function(recon, x, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
    return train_loss / len(data)


@torch.no_grad()
def iw_nll(model, x: torch.Tensor, k: int, images_per_batch: int = 10) -> torch.Tensor:
    """-log p(x) per image from K importance samples; ``images_per_batch`` images' K x 784 decodes at once."""
    model.eval()
    out = []
    for start in range(0, len(x), images_per_batch):
        xb = x[start:start + images_per_batch].reshape(-1, model.d)
        b = len(xb)
        mu, logvar = model.encode(xb)
        eps = torch.randn(k, b, mu.shape[1], device=mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = model.decode(z.view(k * b, -1))
        target = xb.expand(k, b, model.d).reshape(k * b, model.d)
        log_px_z = -F.binary_cross_entropy(recon, target, reduction="none").sum(1).view(k, b)
        log_pz = -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
        log_qz = -0.5 * (eps.pow(2) + logvar + LOG_2PI).sum(-1)
        out.append(-(torch.logsumexp(log_px_z + log_pz - log_qz, dim=0) - math.log(k)))
    return torch.cat(out)


PLAIN_MODELS = {"mlp": PlainMLPVAE, "conv": PlainConvVAE}
