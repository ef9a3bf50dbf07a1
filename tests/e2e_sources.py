"""Small files in each layout the public E2E producers write, for the converter's tests:
written here with pyarrow and h5py, with the values kept so a test can check every one.

  topgun_parquet   X_jet 8 x S x S channel-first nested lists (float64), m, pt, ieta, iphi
                   (float64); one row group per jet, as the Top Gun open data
  qg_parquet       X_jets 3 x S x S channel-first (float64), pt, m0, y (float64); no ieta/iphi
  qg_hdf5          X_jets (N, S, S, 3) channel-last float32, lzf-compressed, chunks of 16
                   jets; m0, pt, y float32
  run2_parquet     X_jet 13 x S x S channel-first (float32), jetM, jetPt (float32), integer
                   ieta, iphi (int32); channels 1 and 2 hold impact parameters (signed)
  amapt_parquet    X_jet S x S x 8 channel-last (float32), am, apt (float64), integer ieta,
                   iphi (int64)

Images are sparse (about 8% of pixels non-zero), energy-like channels positive, impact-
parameter channels of either sign; pixel (0, 0) of every channel is set to a value whose
float32 and float16 roundings are not trivial. Masses are uniform in 85-500 GeV."""
import numpy as np

TOP_GUN_SIGNED = (1, 2)  # dz, d0 in the Top Gun channel order


class Truth:
    """the values a converted file must hold: x (n, C, H, W) float64 in the output's
    channel order, the per-jet columns by output name, the extras by source name"""

    def __init__(self, x, m, pt, ieta=None, iphi=None, extras=None):
        self.x, self.m, self.pt, self.ieta, self.iphi = x, m, pt, ieta, iphi
        self.extras = extras or {}
        self.n = len(m)

    def column(self, name):
        return {"m": self.m, "pt": self.pt, "ieta": self.ieta, "iphi": self.iphi}.get(name, self.extras.get(name))


def images(rng, n, C, S, signed=()):
    x = np.where(rng.random((n, C, S, S)) < 0.08, rng.exponential(3.0, (n, C, S, S)), 0.0)
    for c in signed:
        x[:, c] *= np.where(rng.random((n, S, S)) < 0.5, -1.0, 1.0)
    x[:, :, 0, 0] = rng.uniform(1e-3, 600.0, (n, C))
    return x


def nested(x):
    """(n, a, b, c) array -> list<list<list<value>>>"""
    import pyarrow as pa

    n, a, b, c = x.shape
    arr = pa.array(np.ascontiguousarray(x).reshape(-1))
    for k, ln in ((n * a * b, c), (n * a, b), (n, a)):
        arr = pa.ListArray.from_arrays(pa.array(np.arange(0, k * ln + 1, ln, dtype=np.int32)), arr)
    return arr


def write_parquet(path, cols, row_group):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(cols), path, row_group_size=row_group, compression="snappy")
    return path


def masses(rng, n):
    return rng.uniform(85.0, 500.0, n), rng.uniform(400.0, 1200.0, n)


def topgun_parquet(path, n, S=125, seed=1):
    rng = np.random.default_rng(seed)
    x = images(rng, n, 8, S, TOP_GUN_SIGNED)
    m, pt = masses(rng, n)
    ieta, iphi = rng.integers(0, 170, n).astype(np.float64), rng.integers(0, 360, n).astype(np.float64)
    write_parquet(path, {"X_jet": nested(x), "m": m, "pt": pt, "ieta": ieta, "iphi": iphi}, 1)
    return Truth(x, m, pt, ieta, iphi)


def qg_parquet(path, n, S=125, seed=2):
    rng = np.random.default_rng(seed)
    x = images(rng, n, 3, S)
    m, pt = masses(rng, n)
    y = rng.integers(0, 2, n).astype(np.float64)
    write_parquet(path, {"X_jets": nested(x), "pt": pt, "m0": m, "y": y}, 64)
    return Truth(x, m, pt, extras={"y": y})


def qg_hdf5(path, n, S=125, seed=3):
    import h5py

    rng = np.random.default_rng(seed)
    x = images(rng, n, 3, S).astype(np.float32)
    m, pt = (v.astype(np.float32) for v in masses(rng, n))
    y = rng.integers(0, 2, n).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.create_dataset("X_jets", data=x.transpose(0, 2, 3, 1), compression="lzf", chunks=(min(16, n), S, S, 3))
        f["m0"], f["pt"], f["y"] = m, pt, y
    return Truth(x.astype(np.float64), m, pt, extras={"y": y})


def run2_parquet(path, n, S=125, seed=4, gen_mass=False):
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    x = images(rng, n, 13, S, signed=(1, 2)).astype(np.float32)
    m, pt = (v.astype(np.float32) for v in masses(rng, n))
    ieta, iphi = rng.integers(0, 170, n).astype(np.int32), rng.integers(0, 360, n).astype(np.int32)
    cols = {"X_jet": nested(x), "jetM": pa.array(m), "jetPt": pa.array(pt), "ieta": pa.array(ieta),
            "iphi": pa.array(iphi)}
    extras = {}
    if gen_mass:
        extras["genM"] = (m * rng.uniform(0.9, 1.1, n)).astype(np.float32)
        cols["genM"] = pa.array(extras["genM"])
    write_parquet(path, cols, 16)
    return Truth(x.astype(np.float64), m, pt, ieta, iphi, extras)


def amapt_parquet(path, n, S=125, seed=5):
    rng = np.random.default_rng(seed)
    x = images(rng, n, 8, S, TOP_GUN_SIGNED).astype(np.float32)
    m, pt = masses(rng, n)
    ieta, iphi = rng.integers(0, 170, n), rng.integers(0, 360, n)
    write_parquet(path, {"X_jet": nested(x.transpose(0, 2, 3, 1)), "am": m, "apt": pt, "ieta": ieta,
                         "iphi": iphi}, 50)
    return Truth(x.astype(np.float64), m, pt, ieta, iphi)


LAYOUTS = {"topgun_parquet": topgun_parquet, "qg_parquet": qg_parquet, "qg_hdf5": qg_hdf5,
           "run2_parquet": run2_parquet, "amapt_parquet": amapt_parquet}
