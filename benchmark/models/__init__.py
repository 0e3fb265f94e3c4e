"""Model architectures the benchmark trains, fetches and codes with.

``specs.ARCHITECTURES`` maps a name to a ``ModelSpec``: the CompressAI classes for the learned
baselines (their code is used as is, not rewritten) and the project's own discretized VAEs
(``vae``: ``dvae``, single layer, and ``qres-vae``, hierarchical). ``checkpoint`` saves and
loads trained models with their metadata; ``zoo`` fetches CompressAI's pretrained weights.
"""
