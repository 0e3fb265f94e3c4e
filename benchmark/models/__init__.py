"""Model architectures the benchmark trains, fetches and codes with.

``specs.ARCHITECTURES`` maps a name to a ``ModelSpec``: the CompressAI classes for the learned
baselines (their code is used as is, not rewritten), the single-layer discretized VAE
(``vae``: ``dvae``), QRes-VAE (``qres``: ``qres-vae``, trained here at a chosen width, and
the published ``qres34m`` and ``qres17m``) and progressive SIC (``sic``: ``sic`` at a chosen
width, and ``sic-official``, the authors' model, for their checkpoints). ``checkpoint`` saves
and loads trained models with their metadata; ``zoo`` fetches CompressAI's pretrained weights
and ``published`` QRes-VAE's, both through ``weights`` (torch hub cache, mirror, download,
hash checks).
"""
