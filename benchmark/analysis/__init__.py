"""Analysis of rate-distortion results: Bjontegaard deltas (``bdrate``) and reading/writing
published reference curves (``references``)."""
