"""Analysis of rate-distortion results: Bjontegaard deltas (``bdrate``), their statistics over
images (``bdstats``: per-image BD-rates, wins, bootstrap intervals) and tables (``bdtable``),
reading/writing published reference curves (``references``), perceptual results
(``perception``), how each codec was obtained (``origins``) and a data set's README
(``setreadme``)."""
