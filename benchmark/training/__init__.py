"""Training: the rate-distortion loss, the patch sampler and the resumable loop (``loop``); the
``model`` stage (``benchmark.stages.model``) trains (or fetches) one model at one rate point."""
