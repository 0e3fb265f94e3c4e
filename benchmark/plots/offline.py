"""A page template for ``dvc plots show --html-template`` that draws every plot offline.

``dvc plots show`` writes an HTML page whose vega charts (the training logs) load vega,
vega-lite and vega-embed from a CDN when the page is opened (``dvc_render``: its default page
has a ``{scripts}`` placeholder for those ``<script src=...>`` tags); offline they stay blank.
A template without ``{scripts}`` that carries the three libraries inline draws them anywhere.
The libraries come from ``vl-convert-python`` (the Vega project's package; the ``offline-plots``
extra of pyproject.toml), whose ``javascript_bundle()`` returns vega, vega-lite and vega-embed
with their dependencies as one classic script that defines ``window.vegaEmbed``, the function
DVC's chart divs call. The Vega-Lite version is the newest 5.x the package bundles (DVC's plot
templates are Vega-Lite v5 specs).

    python -m benchmark.plots.offline build/dvc-plots-offline.html      # (make plots does both)
    dvc plots show --html-template build/dvc-plots-offline.html -o build/dvc_plots
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from benchmark.errors import BenchmarkError
from benchmark.fileio import write_text_atomic

PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <script type="text/javascript">
{bundle}
    </script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""
"""DVC's default page (``dvc_render.html.PAGE_HTML``) with the libraries inline instead of its
``{scripts}`` placeholder; ``{refresh_tag}`` and ``{plot_divs}`` are DVC's placeholders."""

VEGA_LITE_MAJOR = "5"
"""The Vega-Lite major version of DVC's plot templates (their ``$schema``: vega-lite/v5)."""


class OfflinePlotsError(BenchmarkError, RuntimeError):
    """The offline template cannot be made: vl-convert-python is missing or bundles no
    Vega-Lite of the major version DVC's specs use, or a bundle would break the page."""


def offline_template(bundle: str) -> str:
    """The page template (``PAGE``) with the JavaScript ``bundle`` inline.

    ``bundle``: a classic script (no ES module syntax) that defines ``window.vegaEmbed``.
    Raises :class:`OfflinePlotsError` when it contains ``</script`` (it would end the inline
    script early) or one of DVC's placeholders (DVC would substitute into the JavaScript).
    """
    found = ["</script"] if "</script" in bundle.lower() else []
    found += [p for p in ("{plot_divs}", "{scripts}", "{refresh_tag}") if p in bundle]
    if found:
        raise OfflinePlotsError(f"the JavaScript bundle contains {found[0]!r}, which would break the page template")
    return PAGE.replace("{bundle}", bundle)


def vega_bundle() -> str:
    """vega, vega-lite (the newest ``VEGA_LITE_MAJOR``.x that vl-convert-python bundles) and
    vega-embed as one script, from ``vl_convert.javascript_bundle``. Raises
    :class:`OfflinePlotsError` when vl-convert-python is not installed or bundles no such version."""
    try:
        import vl_convert
    except ImportError:
        raise OfflinePlotsError(
            "vl-convert-python is not installed: `pip install -e '.[offline-plots]'` (or `make plots`)"
        ) from None
    versions = [v for v in vl_convert.get_vegalite_versions() if v.lstrip("v").split(".")[0] == VEGA_LITE_MAJOR]
    if not versions:
        raise OfflinePlotsError(
            f"vl-convert-python {getattr(vl_convert, '__version__', '?')} bundles no Vega-Lite {VEGA_LITE_MAJOR}.x "
            f"(it has {', '.join(vl_convert.get_vegalite_versions())}); DVC's plots are Vega-Lite v{VEGA_LITE_MAJOR} specs"
        )
    newest = max(versions, key=lambda v: tuple(int(p) for p in v.lstrip("v").split(".")))
    return vl_convert.javascript_bundle(vl_version=newest)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write the template to the path given; returns 0 (1 with a message on stderr when it
    cannot be made)."""
    p = argparse.ArgumentParser(prog="python -m benchmark.plots.offline", description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="the template file to write (e.g. build/dvc-plots-offline.html)")
    args = p.parse_args(argv)
    try:
        write_text_atomic(args.out, offline_template(vega_bundle()))
    except OfflinePlotsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"offline template for `dvc plots show --html-template`: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
