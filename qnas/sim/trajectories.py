"""Monte-Carlo wave-function trajectories in torch: noisy probabilities at 9 to 16+ active qubits.

The same programs as the density-matrix engine (`qnas.sim.density`: fixed channels and
per-sample Z rotations, built by `qnas.noise.compile_program`) evolve state vectors
instead of density matrices, 2^n amplitudes instead of 4^n entries. Each channel is
unravelled by quantum jumps (Dalibard, Castin and Mølmer, PRL 68, 580 (1992)): with
Kraus operators K_i, a trajectory |psi> takes K_i |psi> / ||K_i |psi>|| with probability
||K_i |psi>||^2, so the average of |psi><psi| over trajectories is the channel's output.
The probability of every K_i is read from the reduced density matrix of the channel's
qubits (d x d, d <= 4), and only the chosen K_i is applied: a noisy step costs about two
gate applications, whatever the channel's Kraus rank (qiskit-aer's statevector method
samples each error's circuits per shot instead).

All samples x trajectories are one batch; chunks bound the memory. Each trajectory ends
with its exact outcome probabilities |<x|psi>|^2 (not a sampled bitstring), which
removes shot noise from the estimate: what remains is the spread between trajectories,
reported per group so that callers can put a standard error beside every score.
Seeded: the same seed gives the same trajectories. CPU by default; CUDA when asked.
"""

from __future__ import annotations

import numpy as np
import torch

from qnas.sim.density import Step

# State vectors of one chunk (samples x trajectories) hold at most this many bytes.
CHUNK_BYTES = 256 << 20


def kraus_operators(tensor: np.ndarray, atol: float = 1e-12) -> np.ndarray:
    """Return the Kraus operators (r, d, d) of a channel T[a, b, c, e] (see `qnas.sim.density.Step`).

    From the eigen-decomposition of its Choi matrix C[(a, c), (b, e)] = T[a, b, c, e]
    (Hermitian, positive): K_i = sqrt(lambda_i) reshape(v_i); the fewest operators that
    make the channel, the most probable first.
    """
    d = tensor.shape[0]
    choi = tensor.transpose(0, 2, 1, 3).reshape(d * d, d * d)
    values, vectors = np.linalg.eigh((choi + choi.conj().T) / 2)
    keep = values > atol * max(1.0, values.max())
    order = np.argsort(values[keep])[::-1]
    values, vectors = values[keep][order], vectors[:, keep][:, order]
    return (np.sqrt(values)[:, None] * vectors.T).reshape(-1, d, d)


class TrajectoryProgram:
    """A density-matrix program compiled for trajectories: each channel as Kraus operators on the device."""

    def __init__(self, program: list[Step], n: int, device: torch.device, dtype: torch.dtype) -> None:
        self.n = n
        self.device, self.dtype = device, dtype
        self.steps: list[tuple] = []
        for step in program:
            if step.kind == "rz":
                self.steps.append(("rz", step))
                continue
            kraus = kraus_operators(step.tensor)
            k = torch.as_tensor(kraus, dtype=dtype, device=device)
            if len(kraus) == 1:
                self.steps.append(("unitary", step.qubits, k[0]))
            else:
                # E_i = K_i^dagger K_i: the probability of jump i is Tr(E_i rho_local).
                effects = torch.einsum("rki,rkj->rij", k.conj(), k)
                self.steps.append(("jump", step.qubits, k, effects))

    def run(
        self, values: np.ndarray, trajectories: int, measured: list[int], generator: torch.Generator
    ) -> torch.Tensor:
        """Return (trajectories, N, 2**len(measured)) outcome probabilities, one row per trajectory and sample."""
        n_samples = values.shape[0]
        state = _State(trajectories * n_samples, self.n, self.dtype, self.device)
        # Row t * N + s is trajectory t of sample s: angles repeat per trajectory.
        angles_of = torch.as_tensor(values, dtype=torch.float64, device=self.device).repeat(trajectories, 1)
        for item in self.steps:
            kind = item[0]
            if kind == "rz":
                state.rz(item[1], angles_of)
            elif kind == "unitary":
                flat = state.targets_last(item[1])
                torch.matmul(flat, item[2].T, out=state.spare_like(flat))
                state.swap()
            else:
                _jump(state, state.targets_last(item[1]), item[2], item[3], generator)
        probs = state.canonical().abs().square()
        return _marginal(probs, measured, self.n).view(trajectories, n_samples, -1)


class _State:
    """B state vectors of n qubits whose axes stay in whatever order the last step left them.

    A step wants its qubits as the last axes; moving them there is one copy, and leaving
    the state so (not moving the axes back) saves the copy back: consecutive steps on the
    same qubits move nothing. Two buffers of the batch's size take turns as a step's input
    and output: a fresh tensor of a few hundred MB costs more in page faults than the
    step's arithmetic (measured 4-10x per step at 12 qubits), so no step allocates one.
    """

    def __init__(self, batch: int, n: int, dtype: torch.dtype, device: torch.device) -> None:
        self.n = n
        self.shape = (batch,) + (2,) * n
        self.data = torch.zeros(self.shape, dtype=dtype, device=device)
        self.data.view(batch, -1)[:, 0] = 1.0
        self.spare = torch.empty_like(self.data)
        self.order = list(range(n - 1, -1, -1))  # order[i]: the qubit on axis i + 1 (qubit 0 last)

    def targets_last(self, qubits: tuple[int, ...]) -> torch.Tensor:
        """The state as (B, rest, d), `qubits` the last axes (qubits[0] least significant)."""
        wanted = list(reversed(qubits))
        k = len(wanted)
        if self.order[-k:] != wanted:
            new = [q for q in self.order if q not in wanted] + wanted
            self.spare.copy_(self.data.permute([0] + [1 + self.order.index(q) for q in new]))
            self.swap()
            self.order = new
        return self.data.view(self.shape[0], -1, 2**k)

    def spare_like(self, flat: torch.Tensor) -> torch.Tensor:
        """The spare buffer shaped as `flat`, for a step to write its output into."""
        return self.spare.view(flat.shape)

    def swap(self) -> None:
        """Make the spare buffer (a step's output) the state."""
        self.data, self.spare = self.spare, self.data

    def rz(self, step: Step, values: torch.Tensor) -> None:
        (q,) = step.qubits
        columns = torch.as_tensor(np.asarray(step.columns), device=values.device)
        coeffs = torch.as_tensor(np.asarray(step.coeffs), dtype=torch.float64, device=values.device)
        angle = values[:, columns] @ coeffs + step.offset
        phase = torch.polar(torch.ones_like(angle), -0.5 * angle)  # e^{-i a/2} on |0>, e^{+i a/2} on |1>
        factors = torch.stack([phase, phase.conj()], 1).to(self.data.dtype)
        shape = [self.data.shape[0]] + [1] * self.n
        shape[1 + self.order.index(q)] = 2
        self.data.mul_(factors.reshape(shape))

    def canonical(self) -> torch.Tensor:
        """The state with its axes in qubit order again (qubit 0 last)."""
        canonical = list(range(self.n - 1, -1, -1))
        if self.order != canonical:
            self.data = self.data.permute([0] + [1 + self.order.index(q) for q in canonical])
            self.order = canonical
        return self.data


def _jump(
    state: _State, flat: torch.Tensor, kraus: torch.Tensor, effects: torch.Tensor, generator: torch.Generator
) -> None:
    """Each row of (B, rest, d) takes one Kraus operator, drawn with probability Tr(E_i rho_local), renormalised.

    Kraus operator 0, the most probable, is applied to every row by one matrix product;
    its probability is the squared norm of the result (the state is normalised, so the
    others share 1 - p_0). Only the few rows whose draw falls past p_0 are computed again
    with all probabilities and their own operator: the same draw gives the same choice as
    comparing the draw with the cumulative probabilities of every row.
    """
    b, _, d = flat.shape
    out = state.spare_like(flat)
    torch.matmul(flat, kraus[0].T, out=out)
    real = torch.view_as_real(out).view(b, -1)
    p0 = torch.einsum("bi,bi->b", real, real)
    u = torch.rand((b, 1), generator=generator, dtype=p0.dtype).to(p0.device)
    others = torch.nonzero(u[:, 0] >= p0).squeeze(1)
    out.mul_(p0.clamp_min(1e-30).rsqrt().to(out.dtype)[:, None, None])
    if len(others):
        rows = flat[others]
        # gram[i, j] = sum_r conj(psi_ri) psi_rj, and Tr(E_k rho_local) = sum_ij E_k[i, j] gram[i, j].
        gram = rows.transpose(1, 2).conj() @ rows
        p = (gram.reshape(len(others), d * d) @ effects.reshape(len(kraus), d * d).T).real.clamp_min(0)
        cumulative = torch.cumsum(p / p.sum(1, keepdim=True), 1)
        choice = torch.searchsorted(cumulative, u[others]).clamp_max(len(kraus) - 1).squeeze(1)
        norm = p.gather(1, choice[:, None]).sqrt().clamp_min(1e-30).to(flat.dtype)
        chosen = kraus[choice] / norm[:, :, None]
        out[others] = rows @ chosen.transpose(1, 2)
    state.swap()


def _marginal(probs: torch.Tensor, measured: list[int], n: int) -> torch.Tensor:
    """(B, 2**len(measured)) probabilities of the measured qubits (measured[0] least significant)."""
    keep = [1 + n - 1 - q for q in reversed(measured)]
    drop = tuple(a for a in range(1, n + 1) if a not in keep)
    out = probs.sum(dim=drop) if drop else probs
    remaining = sorted(keep)
    out = torch.movedim(out, [remaining.index(a) + 1 for a in keep], list(range(1, len(keep) + 1)))
    return out.reshape(probs.shape[0], 2 ** len(measured))


def run_trajectories(
    program: list[Step],
    n: int,
    values: np.ndarray,
    measured: list[int],
    trajectories: int,
    seed: int,
    groups: int = 8,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.complex64,
    chunk_bytes: int = CHUNK_BYTES,
) -> np.ndarray:
    """Return (groups, N, 2**len(measured)): the mean outcome probabilities of each group of trajectories.

    `trajectories` per sample, split into `groups` equal groups (the caller's mean over
    groups is the estimate; their spread gives its standard error). Chunks of samples
    keep the state vectors under `chunk_bytes`.
    """
    if trajectories % groups:
        raise ValueError(f"trajectories ({trajectories}) must be a multiple of groups ({groups})")
    compiled = TrajectoryProgram(program, n, torch.device(device), dtype)
    generator = torch.Generator().manual_seed(seed)
    per_state = (2**n) * torch.tensor([], dtype=dtype).element_size() * 4  # state and temporaries
    per_sample = per_state * trajectories
    chunk = max(1, chunk_bytes // per_sample)
    # A sample whose trajectories do not fit in one chunk runs them a chunk at a time.
    traj_chunk = trajectories if per_sample <= chunk_bytes else max(1, chunk_bytes // per_state)
    out = []
    with torch.no_grad():
        for start in range(0, len(values), chunk):
            part = values[start : start + chunk]
            runs = [
                compiled.run(part, min(traj_chunk, trajectories - t), measured, generator)
                for t in range(0, trajectories, traj_chunk)
            ]
            probs = torch.cat(runs, 0).double().cpu().numpy()
            out.append(probs.reshape(groups, trajectories // groups, len(part), -1).mean(1))
    return np.concatenate(out, axis=1)
