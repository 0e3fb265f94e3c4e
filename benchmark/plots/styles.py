"""How curves look in every figure: one colour and marker per codec family, held here only.

``FAMILIES`` is the one table. A family is a codec (classical) or an architecture (learned);
``members`` are the names it is recognised by, case-insensitively: the registered codec class
of a classical codec of ours (``codecs.<name>.codec``: ``jpeg``, ``avif``, ...), the
architecture of a learned one (``models.<name>.arch``: ``mbt2018``, ``qres-vae``, ...) and the
``"name"`` of published curves (``JPEG``, ``AV1``, ``BPG 8b 444 x265 ycbcr``, ``VTM``, ...).

``figure_key`` turns a run's codecs and published curves into the styles and legend entries
that every figure of the run shares:

- our codecs are solid and take their family's colour and marker; a second codec of a family
  already drawn (e.g. ``jpeg`` and a ``jpeg-444`` variant, both class ``jpeg``) takes the next
  colour of ``EXTRA_COLOURS`` instead, so that no two of our curves look alike;
- a published curve is dashed; the published counterpart of one of our codecs
  (``report.published_counterparts``: the same codec, or for a learned codec the same
  architecture) takes that codec's colour and marker; any other takes its family's style when
  no curve of the figure has that colour yet, else an extra colour;
- a published curve of a learned family none of our codecs belongs to is not drawn (the
  figure compares what the run ran; the report names what was left out), unless it is the
  published anchor; published classical curves (VTM, AV1, ...) are always drawn.

So within a figure no two curves share colour, line style and marker, and across the figures
and runs of the project a codec family keeps its colour. The palette: matplotlib's tab10 for the
classical codecs (black for VVC, the usual anchor), then hues tab10 does not use for the learned
families (tab10's pink, cyan, olive and grey among them); markers differ between neighbouring
families for grayscale print.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from matplotlib.figure import Figure
from matplotlib.lines import Line2D


@dataclass(frozen=True)
class Family:
    """One codec family: ``label`` (for people), ``learned`` or classical, its ``colour`` (hex)
    and ``marker`` (a matplotlib marker), and the lower-case ``members`` it is recognised by."""

    key: str
    label: str
    learned: bool
    colour: str
    marker: str
    members: Tuple[str, ...]


FAMILIES: Tuple[Family, ...] = (
    Family("jpeg", "JPEG", False, "#1f77b4", "o", ("jpeg",)),
    Family("webp", "WebP", False, "#ff7f0e", "s", ("webp",)),
    Family("av1", "AV1 / AVIF", False, "#2ca02c", "^", ("avif", "av1")),
    Family("jpeg2000", "JPEG 2000", False, "#d62728", "D", ("jpeg2000", "jpeg 2000")),
    Family("jpegxl", "JPEG XL", False, "#9467bd", "v", ("jpegxl", "jpeg xl")),
    Family("hevc", "HEVC intra (x265, BPG, HM)", False, "#8c564b", "P", ("hevc", "bpg 8b 444 x265 ycbcr", "bpg", "hm")),
    Family("vvc", "VVC intra (VTM)", False, "#000000", "X", ("vvc", "vtm")),
    Family("hyperprior", "scale hyperprior (Balle et al. 2018)", True, "#e377c2", "h", ("bmshj2018-hyperprior",)),
    Family("mean-scale", "mean-scale hyperprior (Minnen et al. 2018)", True, "#17becf", "p", ("mbt2018-mean",)),
    Family("context", "autoregressive context model (Minnen et al. 2018)", True, "#bcbd22", "*", ("mbt2018",)),
    Family("gmm-context", "context model, Gaussian mixture (Cheng et al. 2020)", True, "#8b008b", ">",
           ("cheng2020-anchor",)),
    Family("dvae", "single-layer discretized VAE", True, "#7f7f7f", "d", ("dvae",)),
    Family("qres", "QRes-VAE, hierarchical discretized VAE (Duan et al. 2023)", True, "#00736e", "<",
           ("qres-vae", "qres34m", "qres17m")),
    Family("sic", "progressive Synonymous Image Compression (Liang et al. 2025)", True, "#d95f02", "8",
           ("sic", "sic-official")),
)
"""The family table (see the module docstring). A new codec or architecture gets a row here."""

EXTRA_COLOURS = ("#a6761d", "#1b9e77", "#fb8072", "#6a3d9a", "#e6ab02", "#80b1d3", "#66a61e", "#b15928", "#fccde5", "#b3b3b3")
"""Colours of curves without a family of their own in the figure (none is a family's colour)."""
EXTRA_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h", "p", "*")

_BY_MEMBER = {m: f for f in FAMILIES for m in f.members}


def family_of(name: str) -> Optional[Family]:
    """The family whose members include ``name`` (case-insensitive), or None."""
    return _BY_MEMBER.get(str(name).lower())


@dataclass(frozen=True)
class Entry:
    """One of our codecs in a figure: its ``name``, its ``family`` key (codec class or
    architecture; "" = look the name up), whether it is ``learned`` (its rates decide the
    low-rate panel), the legend ``group`` title it is listed under, and the ``detail`` its legend
    label adds in parentheses (e.g. the parameter count)."""

    name: str
    family: str = ""
    learned: bool = False
    group: str = "Ours"
    detail: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} ({self.detail})" if self.detail else self.name


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str
    published: bool

    @property
    def linestyle(self) -> str:
        return "--" if self.published else "-"

    def line_kwargs(self) -> Dict[str, object]:
        """Keyword arguments of ``Axes.plot``: ours solid and on top, published dashed and thinner."""
        if self.published:
            return dict(color=self.colour, marker=self.marker, linestyle="--", linewidth=1.1, markersize=3.5, zorder=2)
        return dict(color=self.colour, marker=self.marker, linestyle="-", linewidth=1.8, markersize=4.5, zorder=3)

    def handle(self) -> Line2D:
        return Line2D([], [], **self.line_kwargs())


PUBLISHED_GROUP = "Published curves"


@dataclass(frozen=True)
class FigureKey:
    """The styles and legend entries shared by every figure of a run (``figure_key``).

    ``ours``: our codecs in run order; ``published``: the published curves drawn, in order;
    ``left_out``: published curves not drawn (learned families not in the run); ``styles``:
    (name, published) -> Style."""

    ours: Tuple[Entry, ...]
    published: Tuple[str, ...]
    left_out: Tuple[str, ...]
    styles: Mapping[Tuple[str, bool], Style] = field(default_factory=dict)

    def style(self, name: str, published: bool = False) -> Style:
        return self.styles[(name, published)]

    def entry(self, name: str) -> Entry:
        return next(e for e in self.ours if e.name == name)

    @property
    def learned(self) -> Tuple[str, ...]:
        return tuple(e.name for e in self.ours if e.learned)

    def legend_groups(self, ours: Sequence[str], published: Sequence[str] = ()) -> List[Tuple[str, List[Tuple[Line2D, str]]]]:
        """[(group title, [(handle, label)])] for the given curves: our codecs under their
        groups (in run order), then the published curves under ``PUBLISHED_GROUP``."""
        groups: Dict[str, List[Tuple[Line2D, str]]] = {}
        for e in self.ours:
            if e.name in ours:
                groups.setdefault(e.group, []).append((self.style(e.name).handle(), e.label))
        if published:
            groups[PUBLISHED_GROUP] = [(self.style(n, True).handle(), n) for n in self.published if n in published]
        return list(groups.items())


def figure_key(
    ours: Sequence[Entry],
    published: Sequence[str] = (),
    counterparts: Optional[Mapping[str, str]] = None,
    reference_anchor: Optional[str] = None,
) -> FigureKey:
    """Styles and legend entries of a run's figures (rules: module docstring).

    Args:
        ours: our codecs, in the order of the run (legend order).
        published: names of the published curves available (``"name"`` of their files).
        counterparts: our codec -> the name of its published counterpart (case-insensitive).
        reference_anchor: the published anchor's name (always drawn).
    """
    ours = list({e.name: e for e in ours}.values())
    counterparts = {k: str(v).lower() for k, v in (counterparts or {}).items()}
    styles: Dict[Tuple[str, bool], Style] = {}
    used_colours: List[str] = []
    extra = iter(range(10**6))

    def next_extra(published_: bool) -> Style:
        while True:
            i = next(extra)
            colour = EXTRA_COLOURS[i % len(EXTRA_COLOURS)]
            marker = EXTRA_MARKERS[(i + i // len(EXTRA_COLOURS)) % len(EXTRA_MARKERS)]
            if (colour, marker) not in {(s.colour, s.marker) for s in styles.values()}:
                return Style(colour, marker, published_)

    families_run = set()
    for e in ours:
        fam = family_of(e.family or e.name)
        if fam is not None:
            families_run.add(fam.key)
        if fam is not None and fam.colour not in used_colours:
            style = Style(fam.colour, fam.marker, False)
        else:
            style = next_extra(False)
        styles[(e.name, False)] = style
        used_colours.append(style.colour)

    counterpart_of: Dict[str, str] = {}
    for e in ours:  # the first of our codecs whose counterpart a curve is
        cp = counterparts.get(e.name)
        if cp is not None and cp not in counterpart_of:
            counterpart_of[cp] = e.name
    anchor = str(reference_anchor).lower() if reference_anchor else None
    drawn, left_out = [], []
    for name in dict.fromkeys(published):
        low = name.lower()
        fam = family_of(name)
        if low in counterpart_of:
            mine = styles[(counterpart_of[low], False)]
            styles[(name, True)] = Style(mine.colour, mine.marker, True)
        elif fam is not None and fam.learned and fam.key not in families_run and low != anchor:
            left_out.append(name)
            continue
        elif fam is not None and fam.colour not in used_colours:
            styles[(name, True)] = Style(fam.colour, fam.marker, True)
        else:
            styles[(name, True)] = next_extra(True)
        used_colours.append(styles[(name, True)].colour)
        drawn.append(name)
    order = {e.name.lower(): i for i, e in enumerate(ours)}
    family_order = {f.key: i for i, f in enumerate(FAMILIES)}

    def rank(name: str):
        """Legend order: counterparts in the order of our codecs, then by family, then by name."""
        low = name.lower()
        if low in counterpart_of:
            return (0, order[counterpart_of[low].lower()], low)
        fam = family_of(name)
        return (1, family_order[fam.key] if fam else len(FAMILIES), low)

    return FigureKey(tuple(ours), tuple(sorted(drawn, key=rank)), tuple(left_out), styles)


# --- layout: the legend panel below the axes -------------------------------------------------

FONT = {"axes": 9.0, "ticks": 8.0, "legend": 8.0, "title": 9.5}
"""Font sizes in points (the figures are drawn at their print size: 7.2 in wide)."""
MAX_LEGEND_ROWS = 7


def _figure_bbox(artist, fig: Figure, renderer):
    return artist.get_window_extent(renderer).transformed(fig.transFigure.inverted())


def legend_panel(
    fig: Figure,
    groups: Sequence[Tuple[str, Sequence[Tuple[Line2D, str]]]],
    *,
    note: Optional[str] = None,
) -> None:
    """Lay out one legend per group below the figure's axes, left to right, wrapping to a new
    row at the right edge of the axes. A group beside others has at most ``MAX_LEGEND_ROWS``
    rows; a group moved to a new row takes as many columns as the width allows (fewer rows).
    ``note``: text below the legends. The saved figure's tight bounding box takes them in."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer).transformed(fig.transFigure.inverted()) for ax in fig.axes]
    left, right = min(b.x0 for b in boxes), max(b.x1 for b in boxes)
    top = min(b.y0 for b in boxes) - 0.02
    gap_x, gap_y = 0.03, 0.025
    x, y, row_height = left, top, 0.0

    def place(items, title, ncol, at):
        handles, labels = zip(*items)
        leg = fig.legend(handles, labels, title=title, loc="upper left", bbox_to_anchor=at, ncol=ncol,
                         fontsize=FONT["legend"], title_fontsize=FONT["legend"], frameon=False, alignment="left",
                         borderaxespad=0.0, borderpad=0.2, handlelength=2.6, columnspacing=1.4, labelspacing=0.35)
        leg.get_title().set_fontweight("bold")
        return leg, _figure_bbox(leg, fig, renderer)

    for title, items in groups:
        if not items:
            continue
        n = len(items)
        ncol = math.ceil(n / MAX_LEGEND_ROWS)
        leg, box = place(items, title, ncol, (x, y))
        if x > left and box.x1 > right:  # does not fit beside the others: a new row, as wide as it fits
            leg.remove()
            x, y, row_height = left, y - row_height - gap_y, 0.0
            leg, box = place(items, title, ncol, (x, y))
            for k in range(ncol + 1, n + 1):
                if math.ceil(n / k) == math.ceil(n / (k - 1)):
                    continue
                wider, wbox = place(items, title, k, (x, y))
                if wbox.x1 > right:
                    wider.remove()
                    break
                leg.remove()
                leg, box = wider, wbox
        x = box.x1 + gap_x
        row_height = max(row_height, box.height)
    if note:
        width = max(40, int((right - left) * fig.get_figwidth() * 72 / (0.55 * FONT["ticks"])))  # characters per line
        text = "\n".join(textwrap.fill(part, width) for part in note.split("\n"))
        fig.text(left, y - row_height - gap_y, text, ha="left", va="top", fontsize=FONT["ticks"], color="#444444")
