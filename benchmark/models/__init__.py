"""Model architectures the benchmark trains, fetches and codes with.

``ARCHITECTURES`` maps a name to a :class:`ModelSpec`: the CompressAI classes for the learned
baselines (their code is used as is, not rewritten) and the project's own discretized VAEs
(:mod:`benchmark.models.vae`: ``dvae``, single layer, and ``qres-vae``, hierarchical).
:mod:`benchmark.models.checkpoint` saves and loads trained models with their metadata.
"""

from benchmark.models.specs import ARCHITECTURES, ModelSpec, build_model

__all__ = ["ARCHITECTURES", "ModelSpec", "build_model"]
