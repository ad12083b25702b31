"""Netlists of the crossbar circuit of docs/ir-drop.md for ngspice, and their solution.

Used by test_circuit.py (pcmsim against ngspice, a solver nobody here wrote) and usable alone:
    /usr/bin/python3 tests/python/spice_crossbar.py   # prints the errors of a few random arrays
"""
import pathlib
import shutil
import subprocess
import tempfile

import numpy as np


def netlist(G, v, r_row, r_col, r_driver=0.0, r_sense=0.0, out="out.txt"):
    """SPICE netlist of one array G (m x n, S) driven by row voltages v (m,), all r > 0.

    Each source v_i in series with r_row + r_driver is written as its Norton equivalent (current
    v_i / R into node w_i_0, R to ground: the same circuit seen from the array), so the matrix
    is purely nodal: ngspice's Markowitz reordering, which searches hard around the zero
    diagonal of a voltage source's branch equation, then takes a second instead of a minute at
    64 x 64. The bit-line current is read as v(b_{m-1,j}) / (r_col + r_sense)."""
    m, n = G.shape
    r_src = r_row + r_driver
    lines = ["pcmsim crossbar"]
    for i in range(m):
        # SPICE current sources push current from n+ through the source to n-: 0 -> w_i_0.
        lines.append(f"I{i} 0 w{i}_0 {v[i] / r_src:.17e}")
        lines.append(f"RD{i} w{i}_0 0 {r_src:.17e}")
        for j in range(n - 1):
            lines.append(f"RW{i}_{j} w{i}_{j} w{i}_{j + 1} {r_row:.17e}")
    for j in range(n):
        for i in range(m - 1):
            lines.append(f"RB{i}_{j} b{i}_{j} b{i + 1}_{j} {r_col:.17e}")
        lines.append(f"RS{j} b{m - 1}_{j} 0 {r_col + r_sense:.17e}")
    for i in range(m):
        for j in range(n):
            if G[i, j] > 0:
                lines.append(f"RG{i}_{j} w{i}_{j} b{i}_{j} {1.0 / G[i, j]:.17e}")
    probes = " ".join(f"v(b{m - 1}_{j})" for j in range(n))
    lines += [".control", "set numdgt=16", "op", f"wrdata {out} {probes}", "quit 0", ".endc",
              ".end"]
    return "\n".join(lines) + "\n"


def ngspice_currents(G, v, r_row, r_col, r_driver=0.0, r_sense=0.0):
    """Bit-line currents (n,) in amperes by `ngspice -b`: positive into ground."""
    exe = shutil.which("ngspice")
    if exe is None:
        raise RuntimeError("ngspice not found: install Debian's ngspice "
                           "(scripts/install-deps.sh test)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "array.cir").write_text(
            netlist(G, v, r_row, r_col, r_driver, r_sense, out=str(tmp / "out.txt")))
        run = subprocess.run([exe, "-b", str(tmp / "array.cir")], cwd=tmp,
                             capture_output=True, text=True, timeout=120)
        if run.returncode != 0 or not (tmp / "out.txt").exists():
            raise RuntimeError(f"ngspice failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
        values = np.loadtxt(tmp / "out.txt", ndmin=1)
    # wrdata writes (scale, value) per vector: the bottom bit-line potentials.
    return values[1::2] / (r_col + r_sense)


if __name__ == "__main__":
    import pcmsim

    rng = np.random.default_rng(0)
    for m, n in [(4, 7), (16, 16), (64, 64)]:
        G = rng.uniform(0, 25e-6, (m, n))
        v = rng.uniform(0.05, 0.3, m)
        r = dict(r_row=1.0, r_col=2.0, r_driver=0.0, r_sense=0.0)
        want = ngspice_currents(G, v, **r)
        got = pcmsim.crossbar_currents(G, v[None, :], **r)[0]
        print(m, n, np.max(np.abs(got / want - 1)))
