"""The pipeline's stage entry points, one thin ``main(argv)`` each: ``python -m benchmark <stage>``.

Each stage module imports exactly what its stage runs, and dvc.yaml lists those modules as the
stage's code dependencies (``tests/test_stage_deps.py`` checks that they match).
"""
