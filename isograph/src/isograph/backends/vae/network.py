"""The VAE network (``nn.Module``): a Gaussian encoder and a non-linear Gaussian decoder.

Kept apart from the training loop (:mod:`.training`) and from the backend users see
(:mod:`.backend`), as scvi-tools does. Imports torch at module level: import it only through
:func:`isograph.backends.vae._torch.require_torch`-guarded code.
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureVAE(nn.Module):
    """VAE over standardised features of one sample (the samples are the observations).

    Encoder ``x -> (mu, log_var)`` of a diagonal Gaussian posterior over ``n_latent`` dims;
    decoder ``z -> x_hat`` with one hidden layer (the non-linearity that lets a program act on
    a gene through a sigmoid or a quadratic) plus a linear path (so linear programs need no
    hidden unit); a learned log-variance per feature gives the Gaussian likelihood.

    Parameters
    ----------
    n_features
        Input width p.
    n_latent
        Latent dimensions k.
    n_hidden
        Hidden units of the encoder and of the decoder.
    dropout
        Dropout on the encoder's input (a denoising regulariser when p >> n).
    """

    def __init__(self, n_features: int, n_latent: int, n_hidden: int, dropout: float) -> None:
        super().__init__()
        self.n_features = n_features
        self.n_latent = n_latent
        self.encoder = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(n_features, n_hidden),
            nn.SiLU(),
        )
        self.to_mu = nn.Linear(n_hidden, n_latent)
        self.to_log_var = nn.Linear(n_hidden, n_latent)
        self.decoder_hidden = nn.Sequential(nn.Linear(n_latent, n_hidden), nn.SiLU())
        self.decoder_out = nn.Linear(n_hidden, n_features)
        self.decoder_linear = nn.Linear(n_latent, n_features, bias=False)
        self.log_var_x = nn.Parameter(torch.zeros(n_features))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each (batch, n_latent)."""
        h = self.encoder(x)
        return self.to_mu(h), self.to_log_var(h).clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoded features, (batch, n_features)."""
        return self.decoder_out(self.decoder_hidden(z)) + self.decoder_linear(z)

    def forward(self, x: torch.Tensor, beta: float = 1.0) -> dict[str, torch.Tensor]:
        """Loss terms for a batch; ``beta`` weighs the KL term (KL warm-up).

        Returns
        -------
        dict
            ``loss`` (negative ELBO with weighted KL, mean per sample), ``nll`` and ``kl`` (mean
            per sample), ``kl_per_dim`` (mean per sample, shape (n_latent,)).
        """
        mu, log_var = self.encode(x)
        # The posterior mean in eval mode: a deterministic validation ELBO for early stopping.
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var) if self.training else mu
        x_hat = self.decode(z)
        nll = 0.5 * (
            ((x - x_hat) ** 2) * torch.exp(-self.log_var_x) + self.log_var_x + 1.8378770664093453
        ).sum(dim=1)
        kl_dim = 0.5 * (mu**2 + torch.exp(log_var) - 1.0 - log_var)
        kl = kl_dim.sum(dim=1)
        return {
            "loss": (nll + beta * kl).mean(),
            "nll": nll.mean(),
            "kl": kl.mean(),
            "kl_per_dim": kl_dim.mean(dim=0),
        }
