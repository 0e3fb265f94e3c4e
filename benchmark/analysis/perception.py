"""Perceptual results for the report: the per-set FID/KID tables and metric status records that
evaluate writes (``results/<set>/perception/<codec>.csv`` / ``.json``), merged into the summary,
values at matched rates, and the ``perception.md`` text.

A status record (see ``benchmark.metrics.suite.PerceptualSuite.status_record``) says, per
requested metric, whether it was computed or is missing, why, which weight files it used
(with SHA-256 and whether they are the published files) and which it needs and where they go.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from benchmark.metrics.base import METRICS, set_columns, set_metrics, set_table_columns
from benchmark.results import ResultsError


def set_value_columns() -> List[str]:
    """What the per-set table adds to the summary: the patch count and every per-set metric's
    columns (FID; KID and its std)."""
    return ["n_patches"] + set_columns()


def read_set_results(perception_dir: Optional[Path], codecs: Sequence[str]) -> pd.DataFrame:
    """The FID/KID rows of every codec that has ``<perception_dir>/<codec>.csv`` (columns
    ``dataset, codec, rate_param, rate_point, n_images, n_patches, patch_size, fid, kid,
    kid_std``); an empty frame with those columns when none has. A codec without the file is
    simply absent (results from before perceptual metrics). Raises ``ResultsError`` naming the
    file if one is unreadable or lacks columns."""
    cols = ["dataset", "codec", "rate_param"] + set_table_columns()
    frames = []
    for c in codecs:
        p = Path(perception_dir) / f"{c}.csv" if perception_dir is not None else None
        if p is None or not p.is_file():
            continue
        try:
            df = pd.read_csv(p)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise ResultsError(f"{p}: not a readable CSV ({e})") from None
        missing = [k for k in cols if k not in df.columns]
        if missing:
            raise ResultsError(f"{p}: missing columns {missing}")
        frames.append(df[cols])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def read_status(perception_dir: Optional[Path], codecs: Sequence[str]) -> Dict[str, Optional[Dict[str, Any]]]:
    """``{codec: status record or None}`` from ``<perception_dir>/<codec>.json`` (None: no
    record, e.g. results from before perceptual metrics). Raises ``ResultsError`` naming the
    file if it is not a JSON object with a ``metrics`` mapping."""
    out: Dict[str, Optional[Dict[str, Any]]] = {}
    for c in codecs:
        p = Path(perception_dir) / f"{c}.json" if perception_dir is not None else None
        if p is None or not p.is_file():
            out[c] = None
            continue
        try:
            rec = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ResultsError(f"{p}: not a readable JSON file ({e})") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("metrics"), dict):
            raise ResultsError(f"{p}: expected a JSON object with a 'metrics' mapping (a perceptual status record)")
        out[c] = rec
    return out


def attach_set_metrics(summary: pd.DataFrame, sets: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with ``set_value_columns()`` (patch count, FID, KID mean and std) joined on
    (codec, rate point); NaN where a codec has no per-set results. Row order is kept."""
    value_columns = set_value_columns()
    s = summary.drop(columns=[c for c in value_columns if c in summary.columns])
    if sets.empty:
        return s.assign(**{c: np.nan for c in value_columns})
    right = sets[["codec", "rate_point"] + value_columns].astype({"rate_point": float})
    out = s.astype({"rate_point": float}).merge(right, on=["codec", "rate_point"], how="left")
    out["rate_point"] = summary["rate_point"].to_numpy()
    return out


def metric_state(statuses: Mapping[str, Optional[Mapping[str, Any]]], metric: str) -> Dict[str, List[str]]:
    """Which codecs have ``metric`` computed, missing, not computed or not recorded:
    ``{"computed": [...], "missing": [...], "not computed": [...], "not recorded": [...]}``
    (a metric absent from a record, i.e. not requested, counts as "not computed")."""
    out: Dict[str, List[str]] = {"computed": [], "missing": [], "not computed": [], "not recorded": []}
    for codec, rec in statuses.items():
        if rec is None:
            out["not recorded"].append(codec)
            continue
        st = (rec["metrics"].get(metric) or {}).get("status", "not computed")
        out[st if st in out else "not computed"].append(codec)
    return out


def missing_note(statuses: Mapping[str, Optional[Mapping[str, Any]]], metric: str) -> Optional[str]:
    """A one-line note for a figure: why ``metric`` has no values for some or all codecs
    (naming the weight files it needs), or None when every codec has it computed."""
    st = metric_state(statuses, metric)
    parts = []
    if st["missing"]:
        files = []
        for c in st["missing"]:
            for n in statuses[c]["metrics"][metric].get("needs", []):
                if n["file"] not in files:
                    files.append(n["file"])
        who = "all codecs" if len(st["missing"]) == len(statuses) else ", ".join(st["missing"])
        parts.append(f"Missing for {who}: weight file(s) not available ({', '.join(files)}); see perception.md")
    if st["not computed"]:
        parts.append(f"Not computed for {', '.join(st['not computed'])}")
    if st["not recorded"]:
        parts.append(f"No record for {', '.join(st['not recorded'])} (evaluated before perceptual metrics)")
    return ". ".join(parts) + "." if parts else None


def at_matched_rates(summary: pd.DataFrame, codec: str, columns: Sequence[str], rates: Sequence[float]) -> pd.DataFrame:
    """Values of ``columns`` of one codec at the given rates (bpp), interpolated linearly in
    log(bpp) between the codec's rate points (no extrapolation: rates outside its range are
    left out, as are points where a column is not finite). Columns ``bpp`` + ``columns``."""
    s = summary[summary.codec == codec].sort_values("bpp")
    s = s[np.isfinite(s[list(columns)].to_numpy(float)).all(axis=1) & (s.bpp > 0)]
    rows = []
    if len(s) >= 2:
        x = np.log(s.bpp.to_numpy(float))
        for r in rates:
            if x[0] <= math.log(r) <= x[-1]:
                rows.append({"bpp": float(r), **{c: float(np.interp(math.log(r), x, s[c].to_numpy(float))) for c in columns}})
    return pd.DataFrame(rows, columns=["bpp"] + list(columns))


def _fmt(v: Any, spec: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def _computed_lines(statuses, computed: Sequence[Tuple[str, Dict[str, List[str]]]]) -> List[str]:
    lines = ["## Computed", ""]
    if not computed:
        return lines + ["No perceptual metric was computed."]
    lines += ["| metric | codecs | implementation | paper | weights |", "|---|---|---|---|---|"]
    for m, st in computed:
        r = statuses[st["computed"][0]]["metrics"][m]
        weights = []
        for w in r.get("weights", []):
            flag = "" if w.get("verified") else " **not the published file**"
            weights.append(f"`{w['file']}` ({w['origin']}, SHA-256 {w['sha256'][:12]}...{flag})")
        who = "all" if len(st["computed"]) == len(statuses) else ", ".join(st["computed"])
        lines.append(f"| {METRICS.get(m).label} | {who} | {r.get('package', '')} | {r.get('reference', '')} | {'; '.join(weights) or 'none needed'} |")
    return lines


def _missing_lines(statuses, missing: Sequence[Tuple[str, Dict[str, List[str]]]]) -> List[str]:
    lines = ["", "## Missing", ""]
    if not missing:
        return lines + ["None."]
    lines.append(
        "These metrics were requested (`metrics.perceptual`) but their weight files were not available, so "
        "their columns are empty (NaN). A metric missing for every codec has no figure (the data set's README.md "
        "names it); one missing for some codecs is drawn for the others, with a note. Put each file at the path given (the "
        "torch hub cache, `$TORCH_HOME/hub/checkpoints`), or name it under `metrics.weights` in params.yaml, "
        "or put it in the mirror, then rerun the scoring: `dvc repro --force --single-item --glob 'evaluate*' "
        "'report*'` (DVC does not track files outside the project)."
    )
    lines += ["", "| metric | codecs | reason | file needed | put it at |", "|---|---|---|---|---|"]
    for m, st in missing:
        r = statuses[st["missing"][0]]["metrics"][m]
        who = "all" if len(st["missing"]) == len(statuses) else ", ".join(st["missing"])
        needs = r.get("needs", [])
        files = "<br>".join(f"`{n['file']}` ({n['url']})" for n in needs)
        where = "<br>".join(f"`{n['put_at']}` or `{n['param']}`" for n in needs)
        why = "<br>".join(f"{n['file']}: {n['reason']}" for n in needs) or r.get("reason", "")
        lines.append(f"| {METRICS.get(m).label} | {who} | {why} | {files} | {where} |")
    return lines


def _why_not_computed(statuses: Mapping[str, Optional[Mapping[str, Any]]], requested: Sequence[str]) -> str:
    """Why the per-set metrics among ``requested`` have no values, from the status records: the
    weight files that were missing, or the records' reasons, or that they were not requested."""
    names = [m.name for m in set_metrics() if m.name in requested]
    if not names:
        return "no per-set metric was requested (metrics.perceptual)"
    parts = []
    for name in names:
        st = metric_state(statuses, name)
        if st["missing"]:
            files = sorted({n["file"] for c in st["missing"] for n in statuses[c]["metrics"][name].get("needs", [])})
            parts.append(f"{METRICS.get(name).short_label}: weight file(s) not available ({', '.join(files)}; see Missing above)")
        elif st["not computed"]:
            reasons = sorted({(statuses[c]["metrics"].get(name) or {}).get("reason", "") for c in st["not computed"]} - {""})
            parts.append(f"{METRICS.get(name).short_label}: not computed" + (f" ({'; '.join(reasons)})" if reasons else ""))
        elif st["not recorded"]:
            parts.append(f"{METRICS.get(name).short_label}: no status record (evaluated before perceptual metrics)")
    return "; ".join(parts) or "no values in the per-set results"


def _set_table_lines(summary: pd.DataFrame, indicative_below: int, statuses=None, requested: Sequence[str] = ()) -> List[str]:
    """The per-set metrics per (codec, rate point) with the patch count, or "Not computed" with
    the reason (from the status records) and the patch count the run has."""
    columns = [c for c in set_columns() if c in summary.columns]
    has = summary[np.isfinite(summary[columns].to_numpy(float)).any(axis=1)] if columns else summary.iloc[0:0]
    if has.empty:
        n = summary["n_patches"].dropna() if "n_patches" in summary else pd.Series(dtype=float)
        count = ""
        if len(n):
            few = f", under the {indicative_below} below which values are marked indicative" if n.max() < indicative_below else ""
            count = f" The run has {int(n.max())} patches per rate point{few}."
        return [f"Not computed: {_why_not_computed(statuses or {}, requested)}.{count}"]
    metrics = [m for m in set_metrics() if (m.columns or (m.name,))[0] in columns]
    header = ["codec", "rate point", "bpp"] + [m.label for m in metrics] + ["patches", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in has.sort_values(["codec", "bpp"]).iterrows():
        cells = [str(r.codec), f"{r.rate_point:g}", f"{r.bpp:.3f}"]
        for m in metrics:
            value, *spread = [float(r[c]) for c in (m.columns or (m.name,))]
            cells.append(_fmt(value, ".4g") + (f" +- {_fmt(spread[0], '.2g')}" if spread else ""))
        cells += [str(int(r.n_patches)), "indicative" if r.n_patches < indicative_below else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def perception_markdown(
    dataset: str,
    statuses: Mapping[str, Optional[Mapping[str, Any]]],
    summary: pd.DataFrame,
    *,
    indicative_below: int,
    metrics: Sequence[str],
) -> str:
    """``perception.md``: which perceptual ``metrics`` were computed (package, paper, weight files
    and their hashes), which are missing for which codecs and why, with the file each needs and
    where to put it, and the per-set metrics (FID, KID +- its std over subsets) per (codec, rate
    point) with the patch count; values over fewer than ``indicative_below`` patches are marked
    indicative."""
    computed, missing = [], []
    for m in metrics:
        st = metric_state(statuses, m)
        if st["computed"]:
            computed.append((m, st))
        if st["missing"]:
            missing.append((m, st))
    lines = [f"# Perceptual metrics on {dataset}", ""] + _computed_lines(statuses, computed) + _missing_lines(statuses, missing)
    unrecorded = [c for c, r in statuses.items() if r is None]
    if unrecorded:
        lines += ["", f"No perceptual record for: {', '.join(unrecorded)} (evaluated before perceptual metrics; rerun evaluate)."]
    lines += ["", "## FID / KID (HiFiC patch protocol)", ""]
    lines.append(
        "Each image is cut into non-overlapping 256x256 patches, plus a second grid shifted by 128 px in both "
        "directions (Mentzer et al., HiFiC, NeurIPS 2020); FID (Heusel et al. 2017) and KID (Binkowski et al. "
        "2018, cubic polynomial kernel, mean +- std over subsets) compare the Inception V3 features of the "
        "reconstructions' patches with those of the originals' patches (torch-fidelity). FID is biased upwards "
        f"for few samples: values over fewer than {indicative_below} patches are marked *indicative*."
    )
    lines.append("")
    lines += _set_table_lines(summary, indicative_below, statuses, metrics)
    return "\n".join(lines) + "\n"
