#!/usr/bin/env python3
"""launch/e2e-export under test: ONNX Runtime (CPU, the onnxruntime wheel in the project's
.venv) on the exported file against e2e-eval. One test per subcommand (ctest export_<test>):

  matches     two checkpoints trained with real `mpirun -np 2 e2e-train`: a regression
              on 8 x 40 x 40 images (channels dz and d0 signed, their pixels' signs flipped
              at random; scalars iphi, ieta, pt; --zero-suppress 0.02 so that suppression
              changes the predictions) and a classifier on 3 x 32 x 32 images without
              scalars; each exported NCHW and NHWC (opset 17, and 18 once), checked
              (onnx.checker, every value's shape inferred, metadata), run by ONNX Runtime
              on the raw test-split images at batch 1 and in one batch of 1000 (the test
              jets cycled), and on 1000 distinct training-split jets in one batch: within
              1e-5 relative (max over jets) of e2e-eval's m_pred / score for the same rows;
              the graph's preprocessed images equal tests' numpy prep_pixel bit for bit;
              --no-preprocess on preprocessed inputs gives the same predictions
  bad_input   not a checkpoint (text, a jet file), a truncated checkpoint, a tensor's bytes
              changed, a model shape its tensors do not fit, an attribute of the wrong type, an output that is the checkpoint (path or symbolic link, with
              --force too), an existing output without --force, --force over an HDF5
              file, a folder that does not exist, bad options: exit 1 (2 for the command
              line), one message naming the file and the problem, nothing written, no
              partial file left; --force replaces an ONNX file; the version 1 and 2
              fixtures export with --no-preprocess (they record no zero suppression) and
              are refused without it

usage: test_export_onnx.py TEST BUILD_DIR
"""
import glob
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from project_venv import use_project_venv  # noqa: E402 - standard library only

use_project_venv(__file__)

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from test_train_e2e import MPIRUN, check, run, run_test  # noqa: E402

EXPORT = os.path.join(TOP, "launch", "e2e-export")
REG_KINDS = ["energy", "signed", "signed", "energy", "energy", "energy", "energy", "energy"]
REG_SCALARS, REG_SCALES = ["iphi", "ieta", "pt"], [360.0, 170.0, 1000.0]
TOLERANCE = 1e-5


class Env:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.tmp = tempfile.mkdtemp(prefix="e2e-export-test-")

    def exe(self, name):
        return os.path.join(self.build, "launch", name)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def synth(self, name, *args):
        out = self.path(name)
        run(MPIRUN + ["-np", "2", self.exe("e2e-synth"), "--out", out] + list(args), expect=0)
        return out

    def train(self, data, name, *extra):
        out = self.path(name)
        run(MPIRUN + ["-np", "2", self.exe("e2e-train"), "--data", data, "--out", out, "--epochs", "2", "--batch",
                      "32", "--seed", "5"] + list(extra), timeout=300, expect=0)
        return os.path.join(out, "checkpoints", "best.h5")

    def eval(self, ckpt, data, split):
        pred = self.path("pred-%s-%s.h5" % (os.path.basename(os.path.dirname(os.path.dirname(ckpt))), split))
        run(MPIRUN + ["-np", "2", self.exe("e2e-eval"), "--checkpoint", ckpt, "--data", data, "--split", split,
                      "--predictions", pred], expect=0)
        return pred

    def export(self, ckpt, out, *extra, expect=0):
        return run([EXPORT, ckpt, "-o", out] + list(extra), expect=expect)


def regression_data(e):
    """8 x 40 x 40 jets whose dz and d0 pixels have random signs, declared signed, with
    the scalars iphi/360, ieta/170, pt/1000"""
    path = e.synth("reg.h5", "--samples", "1200", "--size", "40", "--channels", "8", "--seed", "3")
    rng = np.random.default_rng(7)
    with h5py.File(path, "r+") as f:
        x = f["X_jet"][()]
        x[:, 1:3] *= np.where(rng.random(x[:, 1:3].shape) < 0.5, -1.0, 1.0).astype(x.dtype)
        f["X_jet"][...] = x
        f.attrs["channel_kinds"] = np.array(REG_KINDS, dtype=h5py.string_dtype())
        f.attrs["scalars"] = np.array(REG_SCALARS, dtype=h5py.string_dtype())
        f.attrs["scalar_scale"] = np.array(REG_SCALES)
    return path


def classification_data(e):
    """3 x 32 x 32 labelled jets declaring no scalars"""
    path = e.synth("cls.h5", "--samples", "1200", "--size", "32", "--channels", "3", "--seed", "4", "--task",
                   "classification")
    with h5py.File(path, "r+") as f:
        f.attrs["scalars"] = np.array([], dtype=h5py.string_dtype())
        f.attrs["scalar_scale"] = np.array([], dtype=np.float64)
    return path


def raw_rows(data, index, scalars):
    """the raw images and scalars of the rows index, as stored in the file"""
    with h5py.File(data, "r") as f:
        order = np.argsort(index)
        x, s = np.empty((len(index),) + f["X_jet"].shape[1:], np.float32), None
        x[order] = f["X_jet"][np.sort(index)]
        if scalars:
            s = np.stack([f[n][()][index] for n in scalars], axis=1).astype(np.float32)
    return x, s


def prep_pixels(x, scales, kinds, zs):
    """net/base/prep_pixel.h in numpy (float32 throughout)"""
    factor = (np.float32(1) / np.asarray(scales, np.float32)).reshape(1, -1, 1, 1)
    signed = np.array([k == "signed" for k in kinds]).reshape(1, -1, 1, 1)
    with np.errstate(invalid="ignore"):
        v = x * factor
        v = np.where(np.where(signed, np.abs(v), v) >= np.float32(zs), v, np.float32(0))
        v = np.where(signed & ~(v > -1), np.float32(-1), v)
        return np.where(v < 1, v, np.float32(1)).astype(np.float32)


def predict(model_path, x, s, batch, nhwc):
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    out = []
    if nhwc:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    for i in range(0, len(x), batch):
        feed = {"X_jet": x[i:i + batch]}
        if s is not None:
            feed["scalars"] = s[i:i + batch]
        out.append(sess.run(None, feed)[0])
    return np.concatenate(out)


def relative(y, want):
    check(y.shape == want.shape and y.dtype == np.float32, "output (batch,) float32: %s %s" % (y.shape, y.dtype))
    return float(np.max(np.abs(y.astype(np.float64) - want) / np.maximum(np.abs(want), 1e-30)))


def check_model_file(path, ck_path, task, nhwc, C, H, W, S):
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    known = {v.name for v in list(m.graph.value_info) + list(m.graph.output)}
    check(all(o in known for n in m.graph.node for o in n.output), "%s: shape inference complete" % path)
    check(m.opset_import[0].version >= 17, "opset %d" % m.opset_import[0].version)
    dims = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    check(dims == (["batch", H, W, C] if nhwc else ["batch", C, H, W]), "X_jet dims %s" % dims)
    check([i.name for i in m.graph.input] == (["X_jet", "scalars"] if S else ["X_jet"]), "inputs named")
    meta = {p.key: p.value for p in m.metadata_props}
    with h5py.File(ck_path, "r") as f:
        names = f["data"].attrs["data_channel_names"].decode().split(",")
        scales = [float(v) for v in f["data/scales"][()]]
        epoch, mass_hash = int(f.attrs["epoch"]), int(f["data"].attrs["data_mass_hash"])
    fp = json.loads(meta["data_fingerprint"])
    check(meta["task"] == task and meta["checkpoint_epoch"] == str(epoch) and json.loads(meta["channels"]) == names
          and json.loads(meta["scales"]) == scales and fp["data_mass_hash"] == mass_hash
          and meta["e2e.version"] and meta["input_layout"] == ("NHWC" if nhwc else "NCHW"),
          "metadata: task, epoch, channel names, scales, fingerprint, version, layout")
    return meta


def compare(e, name, ckpt, data, scalars, out_name, score):
    """e2e-eval's test and training predictions against ONNX Runtime's, NCHW and NHWC"""
    test, train = e.eval(ckpt, data, "test"), e.eval(ckpt, data, "train")
    with h5py.File(test, "r") as f:
        idx, want = f["index"][()], f[score][()].astype(np.float64)
    with h5py.File(train, "r") as f:
        tidx, twant = f["index"][()][:1000], f[score][()][:1000].astype(np.float64)
    check(len(tidx) == 1000, "1000 training jets")
    x, s = raw_rows(data, idx, scalars)
    tx, ts = raw_rows(data, tidx, scalars)
    cyc = np.arange(1000) % len(idx)
    for nhwc in (False, True):
        onnx_path = e.path("%s-%s.onnx" % (name, "nhwc" if nhwc else "nchw"))
        e.export(ckpt, onnx_path, *(["--nhwc"] if nhwc else []))
        meta = check_model_file(onnx_path, ckpt, name, nhwc, x.shape[1], x.shape[2], x.shape[3], len(scalars))
        check(meta["output"] == out_name, "output %s" % out_name)
        r1 = relative(predict(onnx_path, x, s, 1, nhwc), want)
        r1000 = relative(predict(onnx_path, x[cyc], None if s is None else s[cyc], 1000, nhwc), want[cyc])
        rt = relative(predict(onnx_path, tx, ts, 1000, nhwc), twant)
        check(max(r1, r1000, rt) <= TOLERANCE, "%s %s: ONNX Runtime = e2e-eval within %.0e relative on %d test jets at "
              "batch 1 (%.2e) and 1000 (%.2e), 1000 training jets at batch 1000 (%.2e)"
              % (name, "NHWC" if nhwc else "NCHW", TOLERANCE, len(idx), r1, r1000, rt))
    return x, s, want, meta


def check_preprocessing(e, ckpt, x, s, want, meta):
    """the graph's preprocessed images = numpy prep_pixel, bit for bit; --no-preprocess
    on them (and the scaled scalars) gives the same predictions"""
    m = onnx.load(e.path("regression-nchw.onnx"))
    m.graph.output.append(onnx.helper.make_tensor_value_info("X_jet_preprocessed", onnx.TensorProto.FLOAT, None))
    onnx.save(m, e.path("with-prep.onnx"))
    scales = json.loads(meta["scales"])
    edge = x[:2].copy()  # the edges: beyond the scale either way, NaN, infinities, tiny values
    vals = np.array([-5, 5, np.nan, np.inf, -np.inf, -1e-9, 1e-9, -0.5, 0.5], np.float32)
    for c in range(edge.shape[1]):
        edge[0, c, 0, :len(vals)] = vals * np.float32(scales[c])
        edge[1, c, 1, :len(vals)] = vals * np.float32(scales[c]) * np.float32(0.03)  # about zero_suppress
    xe = np.concatenate([x, edge])
    got = ort.InferenceSession(e.path("with-prep.onnx"), providers=["CPUExecutionProvider"]).run(
        ["X_jet_preprocessed"], {"X_jet": xe, "scalars": np.concatenate([s, s[:2]])})[0]
    ref = prep_pixels(xe, scales, REG_KINDS, json.loads(meta["zero_suppress"]))
    check(np.array_equal(got.view(np.uint32), ref.view(np.uint32)) and (ref[:, 1:3] < 0).any()
          and (ref[:, 1:3] == -1).any() and (ref[:, 0] == 1).any() and ((xe != 0) & (ref == 0)).any()
          and np.isfinite(got).all(), "preprocessing bit for bit with numpy prep_pixel (%d pixels): signed pixels kept "
          "negative, clipped at -1 and 1, zero-suppressed ones 0, NaN and infinities handled" % got.size)
    ref = ref[:len(x)]
    e.export(ckpt, e.path("noprep.onnx"), "--no-preprocess")
    scaled = (s / np.array(REG_SCALES, np.float64).astype(np.float32)).astype(np.float32)
    r = relative(predict(e.path("noprep.onnx"), ref, scaled, 64, False), want)
    check(r <= TOLERANCE, "--no-preprocess on preprocessed inputs: within %.0e (%.2e)" % (TOLERANCE, r))
    e.export(ckpt, e.path("opset18.onnx"), "--opset", "18")
    r = relative(predict(e.path("opset18.onnx"), x, s, 64, False), want)
    check(onnx.load(e.path("opset18.onnx")).opset_import[0].version == 18 and r <= TOLERANCE, "--opset 18 runs the same")


def t_matches(e):
    reg = regression_data(e)
    ckpt = e.train(reg, "regression", "--zero-suppress", "0.02")
    x, s, want, meta = compare(e, "regression", ckpt, reg, REG_SCALARS, "mass_gev", "m_pred")
    check(json.loads(meta["scalars"]) == REG_SCALARS and json.loads(meta["channel_kinds"]) == REG_KINDS
          and json.loads(meta["mass_scale"]) == 500.0 and meta["mass_scale_source"] == "checkpoint",
          "metadata: scalars, kinds, the target scale from the checkpoint")
    check_preprocessing(e, ckpt, x, s, want, meta)
    cls = classification_data(e)
    ckpt = e.train(cls, "classification", "--task", "classification")
    compare(e, "classification", ckpt, cls, [], "score", "score")


def refused(p, needles, what, code=1):
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    ok = p.returncode == code and len(lines) >= 1 and all(n in p.stderr for n in needles)
    if not ok:
        print(p.stdout, p.stderr, sep="\n")
    check(ok, "%s: exit %d, message names %s" % (what, code, ", ".join(needles)))


def nothing_written(e, out, before=None):
    partial = glob.glob(os.path.join(os.path.dirname(out), ".*.partial-*"))
    now = open(out, "rb").read() if os.path.exists(out) else None
    check(now == before and not partial, "%s: %s, no partial file" % (os.path.basename(out), "left as it was"
                                                                       if before else "not written"))


def t_bad_input(e):
    data = e.synth("jets.h5", "--samples", "400", "--size", "32", "--channels", "3", "--seed", "2")
    ckpt = e.train(data, "run")
    out = e.path("model.onnx")
    text = e.path("notes.txt")
    with open(text, "w") as f:
        f.write("not a checkpoint\n")
    refused(e.export(text, out, expect=1), [text, "not an HDF5 file, or truncated"], "a text file")
    nothing_written(e, out)
    refused(e.export(data, out, expect=1), [data, "not an e2e-ddp checkpoint"], "a jet data file")
    nothing_written(e, out)
    trunc = e.path("truncated.h5")
    blob = open(ckpt, "rb").read()
    with open(trunc, "wb") as f:
        f.write(blob[:len(blob) * 2 // 3])
    refused(e.export(trunc, out, expect=1), [trunc, "truncated"], "a truncated checkpoint")
    nothing_written(e, out)
    bad = e.path("changed.h5")
    shutil.copy(ckpt, bad)
    with h5py.File(bad, "r+") as f:
        w = f["model/conv0.weight"]
        w[0, 0, 0, 0] = w[0, 0, 0, 0] + 1
    refused(e.export(bad, out, expect=1), [bad, "do not match their hash"], "a tensor changed")
    nothing_written(e, out)
    shutil.copy(ckpt, bad)
    with h5py.File(bad, "r+") as f:
        f.attrs["blocks"] = int(f.attrs["blocks"]) + 1
    refused(e.export(bad, out, expect=1), [bad, "lacks tensors layer1.3"], "a model shape that fits no tensors")
    nothing_written(e, out)
    shutil.copy(ckpt, bad)
    with h5py.File(bad, "r+") as f:
        del f.attrs["epoch"]
        f.attrs["epoch"] = "seven"
    refused(e.export(bad, out, expect=1), [bad, "a malformed checkpoint"], "an attribute of the wrong type")
    nothing_written(e, out)
    refused(e.export(e.path("missing.h5"), out, expect=1), ["missing.h5", "cannot read the checkpoint"], "no file")
    nothing_written(e, out)

    ck_bytes = open(ckpt, "rb").read()
    refused(e.export(ckpt, ckpt, "--force", expect=1), [ckpt, "is the checkpoint being exported"], "-o CHECKPOINT")
    link = e.path("link.h5")
    os.symlink(ckpt, link)
    refused(e.export(ckpt, link, "--force", expect=1), [link, "is the checkpoint being exported"], "-o a link to it")
    check(open(ckpt, "rb").read() == ck_bytes, "the checkpoint is unchanged")
    refused(e.export(ckpt, data, "--force", expect=1), [data, "HDF5 file", "not replaced"], "--force over a jet file")
    refused(e.export(ckpt, e.path("no/such/dir/m.onnx"), expect=1), ["cannot write into the folder"], "no folder")

    e.export(ckpt, out)
    first = open(out, "rb").read()
    refused(e.export(ckpt, out, "--nhwc", expect=1), [out, "exists", "--force"], "an existing output")
    nothing_written(e, out, first)
    e.export(ckpt, out, "--nhwc", "--force")
    m = onnx.load(out)
    check({p.key: p.value for p in m.metadata_props}["input_layout"] == "NHWC" and not glob.glob(e.path(".*partial*")),
          "--force replaces an ONNX file")

    for args, needle in ((["--opset", "12"], "--opset 12"), (["--bogus"], "unrecognized"), ([], "-o")):
        p = run([EXPORT, ckpt] + (["-o", e.path("x.onnx")] if args != [] else []) + args, expect=2)
        refused(p, [needle], "command line %s" % (" ".join(args) or "without -o"), code=2)
    check(not os.path.exists(e.path("x.onnx")), "nothing written on a bad command line")

    for v in (1, 2):
        fixture = os.path.join(HERE, "reference", "checkpoint_v%d.h5" % v)
        o = e.path("v%d.onnx" % v)
        refused(e.export(fixture, o, expect=1), [fixture, "no zero-suppression threshold", "--no-preprocess"],
                "version %d without --no-preprocess" % v)
        e.export(fixture, o, "--no-preprocess")
        meta = {p.key: p.value for p in onnx.load(o).metadata_props}
        check(meta["checkpoint_version"] == str(v) and meta["mass_scale_source"] != "checkpoint",
              "version %d exports with --no-preprocess (the format's target scale)" % v)


TESTS = {"matches": t_matches, "bad_input": t_bad_input}

if __name__ == "__main__":
    sys.exit(run_test(TESTS, __doc__, Env))
