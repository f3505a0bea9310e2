"""The baseline: the training loop a user would write by hand, in the style of pytorch/examples' vae.

Same network as vaekit's MLP VAE (784-512-16-512-784, ReLU), separate mean and log-variance heads,
sigmoid output with binary cross-entropy summed over pixels, torch.optim.Adam with its defaults,
and batches taken from one tensor (no DataLoader), so the comparison measures the training step.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn


class PlainVAE(nn.Module):
    def __init__(self, d: int = 784, hidden: int = 512, latent: int = 16):
        super().__init__()
        self.fc1 = nn.Linear(d, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, d)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def plain_loss(recon, x, mu, logvar):
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def train_epoch(model, optimizer, data: torch.Tensor, batch_size: int) -> float:
    """One epoch over ``data`` (N, 784); returns images per second."""
    model.train()
    order = torch.randperm(len(data))
    started = time.perf_counter()
    total = 0.0
    for start in range(0, len(data), batch_size):
        x = data[order[start:start + batch_size]]
        optimizer.zero_grad()
        recon, mu, logvar = model(x)
        loss = plain_loss(recon, x, mu, logvar)
        loss.backward()
        total += loss.item()
        optimizer.step()
    return len(data) / (time.perf_counter() - started)
