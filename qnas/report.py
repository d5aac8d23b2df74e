"""The run report: one self-contained HTML page a person reads to decide about a run.

`write_report(run_dir)` writes RUN/report.html: the chosen circuit and its scores
(noiseless, noisy, and deployed where `qnas deploy` ran), the front of the search
(inherited weights) beside the fine-tuned finalists the choice was made among, so it is
clear why the chosen circuit sits where it does; hypervolume and best score per
generation; the chosen circuit drawn; the device's coupling map with the chosen layout
and its qubits' error rates; the resolved config. Plotly's script is inlined once, so the
page opens offline.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from qnas.config import dump_config, objective_direction
from qnas.results import RunDir

_NAMES = {
    "loss": "loss",
    "calibrated_loss": "calibrated loss",
    "accuracy": "accuracy",
    "energy": "energy (Ha)",
    "n_2q": "two-qubit gates after transpiling",
    "depth": "depth after transpiling",
    "n_params": "trainable angles",
    "expressibility": "expressibility (KL from Haar)",
    "entangling_capability": "entangling capability (Meyer-Wallach)",
    "success_probability": "estimated success probability",
}
_NOISY = {"loss", "calibrated_loss", "accuracy", "energy"}


def axis_label(objective: str, noise_aware: bool) -> str:
    """A readable axis title: what the objective is, noisy or not, and which way is better."""
    name = _NAMES.get(objective, objective.replace("_", " "))
    if objective in _NOISY:
        name = f"{'noisy' if noise_aware else 'noiseless'} {name} on validation samples"
    better = "lower" if objective_direction(objective) == "minimize" else "higher"
    return f"{name} ({better} is better)"


def write_report(run_dir: Path | str) -> Path:
    """Write RUN/report.html and return its path."""
    import plotly.graph_objects as go
    import plotly.io as pio

    run = RunDir(run_dir)
    config = run.load_config()
    if not run.best_json.exists():
        raise FileNotFoundError(f"{run.path} has no chosen circuit yet (best.json); finish qnas search first")
    best = json.loads(run.best_json.read_text())
    table = pd.read_parquet(run.candidates_parquet)
    if "id" not in best and "id" in table:  # best.json of runs made before candidates had ids
        best["id"] = str(table.set_index("trial")["id"].get(best["trial"], "?"))
    objectives = config.search.objectives
    from qnas.results import front_of

    table = table.assign(
        blocks=table["arch"].map(lambda a: json.loads(a)[-1] if isinstance(a, str) else a[-1])
    )
    ok = table[~table["failed"]]
    front = front_of(table, objectives)
    x, y = (objectives[1], objectives[0]) if len(objectives) > 1 else ("trial", objectives[0])
    hover = [c for c in ("id", "trial", "blocks", "layout", "arch", *objectives, "n_2q", "depth") if c in ok]
    hover = list(dict.fromkeys(hover))

    def points(df: pd.DataFrame, name: str, **style: Any) -> go.Scatter:
        text = ["<br>".join(f"{c}: {_short(r[c])}" for c in hover) for _, r in df.iterrows()]
        return go.Scatter(x=df[x], y=df[y], mode="markers", name=name, text=text, hoverinfo="text", **style)

    figure = go.Figure()
    figure.add_trace(points(ok, "candidates (inherited weights)", marker={"color": "#9aa5b1", "size": 6}))
    ordered = front.sort_values(x)
    figure.add_trace(
        points(ordered, "Pareto front (inherited weights)", marker={"color": "#d62728", "size": 8})
    )
    figure.data[-1].mode = "lines+markers"
    finalists = _finalists(best, table, x, y)
    if not finalists.empty:
        chosen = finalists[finalists["chosen"]]
        for part, name, marker in (
            (
                finalists,
                "fine-tuned finalists (valid)",
                {"color": "#1f77b4", "size": 10, "symbol": "diamond"},
            ),
            (chosen, "chosen circuit", {"color": "black", "size": 18, "symbol": "star"}),
        ):
            figure.add_trace(
                go.Scatter(
                    x=part[x],
                    y=part[y],
                    mode="markers",
                    name=name,
                    marker=marker,
                    text=part["text"],
                    hoverinfo="text",
                )
            )
    figure.update_layout(
        xaxis_title=axis_label(x, config.search.noise_aware) if x != "trial" else "trial",
        yaxis_title=axis_label(y, config.search.noise_aware),
        height=480,
        margin={"t": 30},
        legend={"orientation": "h", "y": -0.2},
    )
    history = pd.read_csv(run.history_csv) if run.history_csv.exists() else pd.DataFrame()
    parts = [
        _header(config, best, run),
        "<h2>Search front and the choice</h2>",
        "<p>Grey: every candidate, scored with the weights it inherits from the SuperCircuit; red: "
        "the Pareto front of those scores. Candidates' inherited weights rank them only roughly, so "
        "the best of each depth is fine-tuned and scored again on the whole validation set (blue); the "
        "star is the one chosen. Its first objective after fine-tuning is plotted, so it can sit off "
        "the red front.</p>",
        pio.to_html(figure, include_plotlyjs=True, full_html=False, div_id="front"),
    ]
    if not history.empty:
        best_col = next(c for c in history if c.startswith("best_"))
        hv = go.Figure()
        hv.add_trace(go.Scatter(x=history["generation"], y=history["hypervolume"], name="hypervolume"))
        hv.add_trace(go.Scatter(x=history["generation"], y=history[best_col], name=best_col, yaxis="y2"))
        hv.update_layout(
            xaxis_title="generation",
            yaxis_title="hypervolume (higher is better)",
            yaxis2={"title": best_col.replace("_", " "), "overlaying": "y", "side": "right"},
            height=360,
            margin={"t": 30},
        )
        parts += ["<h2>Per generation</h2>", pio.to_html(hv, include_plotlyjs=False, full_html=False)]
    parts += [
        "<h2>The chosen circuit</h2>",
        _circuit_image(run),
        "<h2>On the device</h2>",
        _device(config, best),
    ]
    parts += ["<h2>Config</h2>", f"<pre>{html.escape(dump_config(config))}</pre>"]
    page = _PAGE.format(title=html.escape(f"qnas run {run.path.name}"), body="\n".join(parts))
    out = run.path / "report.html"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))


def _finalists(best: dict, table: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The fine-tuned finalists, placed at their validation score (y) and the search's cost (x)."""
    rows = []
    by_trial = table.set_index("trial")
    for f in best.get("finalists", []):
        valid = f.get("valid_after_finetune", {})
        if f["trial"] not in by_trial.index or y not in valid:
            continue
        row = by_trial.loc[f["trial"]]
        xv = valid.get(x, row.get(x)) if x != "trial" else f["trial"]
        chosen = f["trial"] == best["trial"]
        text = "<br>".join(
            [
                f"{'chosen: ' if chosen else ''}id {row.get('id', '?')} (trial {f['trial']})",
                f"blocks {f['arch'][-1]}, layout {f['layout']}",
                *(f"{k} after fine-tuning: {_short(v)}" for k, v in valid.items()),
            ]
        )
        rows.append({x: xv, y: valid[y], "chosen": chosen, "text": text})
    return pd.DataFrame(rows)


def _header(config, best: dict, run: RunDir) -> str:
    test = best["test"]
    noisy = test["noisy"]
    kinds = {"noiseless": test["noiseless"], f"noisy ({test['device']})": noisy}
    for summary in (
        sorted((run.path / "deploy").glob("*/summary.json")) if (run.path / "deploy").exists() else []
    ):
        s = json.loads(summary.read_text())
        if s.get("trial") == "best":
            twirled = f", twirled x{s['twirls']}" if s.get("twirls") else ""
            kinds[f"deployed ({s['device']}, {s['shots']} shots{twirled})"] = s["measured"]
    metrics = [
        m for m in ("accuracy", "calibrated_loss", "loss", "energy", "exact_energy") if m in test["noiseless"]
    ]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in kinds)
    body = "".join(
        f"<tr><td>{m}</td>" + "".join(f"<td>{_fmt(m, v.get(m))}</td>" for v in kinds.values()) + "</tr>"
        for m in metrics
    )
    return (
        f"<h1>qnas run <code>{html.escape(str(run.path))}</code></h1>"
        f"<p>Task <b>{html.escape(config.task.name)}</b> on <b>{html.escape(config.device)}</b>, design space "
        f"{html.escape(config.space.name)}, seed {config.seed}. Chosen circuit: id <code>{best.get('id', '?')}</code> "
        f"(trial {best['trial']}), {best['arch'][-1]} blocks, layout {best['layout']}, {noisy.get('n_2q', '?')} "
        f"two-qubit gates, depth {noisy.get('depth', '?')}.</p>"
        f"<table><tr><th>{html.escape(test.get('split', 'test'))} scores</th>{head}</tr>{body}</table>"
    )


def _fmt(metric: str, value: Any) -> str:
    if value is None:
        return ""
    return f"{100 * value:.1f}%" if metric == "accuracy" else f"{value:.4f}"


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _circuit_image(run: RunDir) -> str:
    from qnas.api import Run

    circuit = Run(run.path).circuit("best")
    try:
        figure = circuit.draw(output="mpl", fold=40)
    except Exception as err:  # the drawer's optional parts; the text drawing always works
        return f"<p>(drawn as text: {html.escape(str(err))})</p><pre>{html.escape(str(circuit.draw('text')))}</pre>"
    return f'<img alt="the chosen circuit" src="data:image/png;base64,{_png(figure)}">'


def _device(config, best: dict) -> str:
    """The coupling map with the chosen layout coloured, and the chosen qubits' calibration."""
    from qnas.devices import get_device

    device = get_device(config.device)
    layout = best["layout"]
    rows = _qubit_rows(device, layout)
    table = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>" for r in rows
    )
    head = "".join(f"<th>{k}</th>" for k in rows[0]) if rows else ""
    image = f'<img alt="coupling map" src="data:image/png;base64,{_png(coupling_figure(device, layout))}">'
    return (
        "<p>The device's qubits coloured by readout error; circled in red, the physical qubits of the chosen "
        f"layout, labelled q(physical) / L(logical), and in red the couplings between them.</p>{image}"
        f"<table><tr>{head}</tr>{table}</table>"
    )


def coupling_figure(device, layout: list[int]):
    """A matplotlib Figure of the coupling map (spring layout, seeded), the chosen layout marked."""
    import numpy as np
    import rustworkx as rx
    from matplotlib.figure import Figure

    n = device.n_qubits
    coupling = device.backend.coupling_map
    edges = sorted({tuple(sorted(e)) for e in coupling.get_edges()}) if coupling is not None else []
    graph = rx.PyGraph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from_no_data(edges)
    pos = rx.spring_layout(graph, seed=0, num_iter=200)
    xy = np.array([pos[q] for q in range(n)])
    target = device.backend.target
    readout = np.full(n, np.nan)
    if "measure" in target.operation_names:
        for q in range(n):
            props = target["measure"].get((q,))
            if props is not None and props.error is not None:
                readout[q] = props.error
    size = 6 if n <= 30 else 4
    figure = Figure(figsize=(size + 1, size))
    ax = figure.subplots()
    chosen = set(layout)
    for a, b in edges:
        inside = a in chosen and b in chosen
        ax.plot(*xy[[a, b]].T, color="#d62728" if inside else "#c0c6cc", lw=2.5 if inside else 1, zorder=1)
    dots = ax.scatter(xy[:, 0], xy[:, 1], c=readout, cmap="viridis", s=260 if n <= 30 else 60, zorder=2)
    ax.scatter(
        *xy[list(chosen)].T,
        s=420 if n <= 30 else 140,
        facecolors="none",
        edgecolors="#d62728",
        lw=2,
        zorder=3,
    )
    for logical, q in enumerate(layout):
        ax.annotate(
            f"q{q}/L{logical}", xy[q], textcoords="offset points", xytext=(8, 8), fontsize=9, color="#d62728"
        )
    figure.colorbar(dots, ax=ax, label="readout error")
    ax.set_axis_off()
    ax.set_title(f"{device.name}: {n} qubits")
    return figure


def _qubit_rows(device, layout: list[int]) -> list[dict[str, Any]]:
    target = device.backend.target
    rows = []
    for logical, q in enumerate(layout):
        props = target.qubit_properties[q] if target.qubit_properties else None
        measure = target["measure"].get((q,)) if "measure" in target.operation_names else None
        one_q = [
            target[g][(q,)].error
            for g in ("sx", "x")
            if g in target.operation_names
            and target[g].get((q,)) is not None
            and target[g][(q,)].error is not None
        ]
        rows.append(
            {
                "logical": logical,
                "physical": q,
                "readout error": f"{measure.error:.4f}"
                if measure is not None and measure.error is not None
                else "",
                "1q error": f"{max(one_q):.2e}" if one_q else "",
                "T1 (us)": f"{props.t1 * 1e6:.0f}" if props is not None and props.t1 else "",
                "T2 (us)": f"{props.t2 * 1e6:.0f}" if props is not None and props.t2 else "",
            }
        )
    return rows


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }}
pre {{ background: #f6f8fa; padding: 1em; overflow-x: auto; }}
img {{ max-width: 100%; }}
</style></head><body>
{body}
</body></html>
"""
