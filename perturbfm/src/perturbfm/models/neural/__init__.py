"""PerturbFM's own models v0-v3 (PyTorch), in three parts as scvi-tools does.

:mod:`~perturbfm.models.neural.features` turns dataset rows into tensors (no torch
state), :mod:`~perturbfm.models.neural.modules` holds the ``nn.Module`` networks,
:mod:`~perturbfm.models.neural.trainer` the one training loop, and
:mod:`~perturbfm.models.neural.models` the user-facing, registered models. Importing this
package imports torch; the registry imports it only when a ``perturbfm-v*`` model is asked for.
"""
