"""Write docs/tutorial.ipynb from the cells below, outputs stripped (run it after editing them).

python scripts/make_tutorial.py
"""

from pathlib import Path

import nbformat

CELLS = [
    (
        "markdown",
        """# qnas in a notebook: search, look, export, deploy

A small noise-aware search on `digits4` (4 classes of scikit-learn's digits, on 4 qubits) for
`fake_quito`, then the Pareto front, the chosen circuit drawn and exported, and a run of it on the
fake device through IBM Runtime's local mode. The budget is a few minutes on a laptop; set
`QNAS_TUTORIAL_TINY=1` for a smoke run of seconds (the test suite does).""",
    ),
    (
        "code",
        """import os

import matplotlib.pyplot as plt

import qnas

tiny = os.environ.get("QNAS_TUTORIAL_TINY") == "1"
config = qnas.Config(
    device="fake_quito",
    task={"name": "digits4"},
    space={"name": "u3cu3", "max_blocks": 2 if tiny else 4},
    train={"epochs": 1 if tiny else 20, "batch_size": 64},
    search={
        "population": 6 if tiny else 12,
        "parents": 2 if tiny else 4,
        "mutants": 3 if tiny else 6,
        "crossovers": 1 if tiny else 2,
        "iterations": 1 if tiny else 4,
        "valid_samples": 24 if tiny else 100,
    },
    finetune={"epochs": 1 if tiny else 60, "finalists": 2},
)
run = qnas.search(config, out="runs/tutorial", progress=not tiny)
run""",
    ),
    (
        "markdown",
        """## The Pareto front

Each point is a candidate scored with the weights it inherits from the SuperCircuit; the front
is the set no other candidate beats on both objectives. The chosen circuit (the star) is picked
after fine-tuning the best candidates of each depth on the validation set, so it need not sit
on this front.""",
    ),
    (
        "code",
        """table, front, best = run.candidates, run.pareto_front, run.best
ok = table[~table["failed"]]
fig, ax = plt.subplots(figsize=(6, 4))
ax.scatter(ok["n_2q"], ok["loss"], s=14, alpha=0.4, label="candidates")
ordered = front.sort_values("n_2q")
ax.plot(ordered["n_2q"], ordered["loss"], "o-", color="C3", label="Pareto front")
chosen = ok[ok["id"] == best["id"]]
ax.scatter(chosen["n_2q"], chosen["loss"], marker="*", s=250, color="k", label="chosen (after fine-tuning)")
ax.set_xlabel("two-qubit gates after transpiling")
ax.set_ylabel("noisy loss on validation samples (lower is better)")
ax.legend()
front[["id", "layout", "arch", "loss", "n_2q"]]""",
    ),
    ("markdown", "## The chosen circuit, its scores, drawn and exported"),
    (
        "code",
        """test = best["test"]
print("id", best["id"], "layout", best["layout"])
print(f"test accuracy noiseless {test['noiseless']['accuracy']:.3f}, noisy {test['noisy']['accuracy']:.3f}")
run.draw("best")""",
    ),
    (
        "code",
        """qasm = run.export("best", "qasm3", transpiled=True, measure=True)
print(qasm[:1200])""",
    ),
    (
        "markdown",
        """## Run it on the (fake) device

`deploy` sends the test samples through IBM Runtime's sampler; a `fake_*` device runs in the
runtime's local testing mode with its calibrated noise. A live `ibm_*` name runs on hardware
(with a saved IBM Quantum account).""",
    ),
    (
        "code",
        """summary = run.deploy("fake_quito", shots=500 if tiny else 2000, limit=16 if tiny else 100, progress=False)
print("measured", summary["measured"])
print("predicted by the noisy simulation", summary["predicted"])""",
    ),
]


def main() -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in CELLS:
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        notebook.cells.append(make(source))
    for i, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{i}"  # stable ids: regenerating the file changes nothing
    path = Path(__file__).resolve().parent.parent / "docs" / "tutorial.ipynb"
    nbformat.write(notebook, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
