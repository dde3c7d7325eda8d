"""The ``vae`` backend: a PyTorch variational autoencoder over the feature matrix.

Three parts, kept apart as in scvi-tools: the network (:mod:`.network`, an ``nn.Module``),
one training loop (:mod:`.training`), and the backend users see (:mod:`.backend`). Torch is
imported only when the backend fits or a checkpoint is loaded; without torch, IsoGraph's
other backends run and asking for ``vae`` says what to install.

:func:`load_vae` reads a fit folder's checkpoint back for explanations (decoder attribution,
Integrated Gradients).
"""

from isograph.backends.vae.backend import CHECKPOINT_NAME, VaeConfig, VaeNetworkModel
from isograph.backends.vae.handle import VAEHandle, load_vae

__all__ = ["CHECKPOINT_NAME", "VAEHandle", "VaeConfig", "VaeNetworkModel", "load_vae"]
