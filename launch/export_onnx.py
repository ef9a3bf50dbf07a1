"""e2e-export: an e2e-ddp checkpoint as a standard ONNX graph that ONNX Runtime (and so
CMSSW's cms::Ort::ONNXRuntime) runs on raw detector images. The graph holds the
ResNet-15 of the checkpoint and, unless --no-preprocess, the reader's preprocessing
(net/base/prep_pixel.h: pixel x 1/scale in float32, zero suppression of v or |v|,
clipping to [0, 1] or [-1, 1]; scalars / their scale in float32) and the output's
conversion (regression: the prediction x mass_scale in float64, as e2e-eval computes it;
classification: 1 / (1 + exp(-logit)) in float64). Built from numpy arrays with
onnx.helper: no PyTorch needed. Run by launch/e2e-export in the project's .venv.

usage: e2e-export CHECKPOINT -o OUT.onnx [--nhwc] [--no-preprocess] [--opset N] [--force]
"""
import argparse
import json
import os
import re
import sys

import numpy as np

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKPOINT_FORMAT = "e2e-ddp checkpoint"
CHECKPOINT_VERSIONS = (1, 4)
DEFAULT_OPSET = 17
MASS_SCALE_GEV = 500.0  # data/format/format.h: every checkpoint before mass_scale was recorded
FNV_PRIME, FNV_BASIS, MASK64 = 0x100000001B3, 0xCBF29CE484222325, (1 << 64) - 1


class ExportError(Exception):
    """one message naming the file and the problem (exit 1)"""


def project_version():
    """the project's version, from CMakeLists.txt's project(... VERSION x.y)"""
    try:
        with open(os.path.join(TOP, "CMakeLists.txt")) as f:
            m = re.search(r"project\(\s*\w+\s+VERSION\s+([0-9.]+)", f.read())
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


def text(v):
    """an HDF5 string attribute (bytes, str or a 0-d array) as str"""
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    return v.decode() if isinstance(v, bytes) else str(v)


def strings(v):
    return [text(x) for x in np.atleast_1d(v)] if v is not None and np.size(v) else []


def fnv1a(h, data):
    """dist/run/checkpoint.c's tensor hash, continued over the bytes of data"""
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return h


# ---- reading the checkpoint ----

def open_checkpoint(path):
    import h5py
    if os.path.isdir(path):
        raise ExportError("%s: is a folder, not a checkpoint (a run's checkpoints are RUNDIR/checkpoints/*.h5)" % path)
    try:
        return h5py.File(path, "r")
    except OSError as e:
        if not os.path.exists(path) or not os.access(path, os.R_OK):
            raise ExportError("%s: cannot read the checkpoint (%s)" % (path, e.strerror or e))
        raise ExportError("%s: not an HDF5 file, or truncated: not a usable checkpoint" % path)


def read_checkpoint(path):
    """everything the graph and its metadata need, as a dict; ExportError on a bad file
    (an attribute of the wrong type or shape too, as one message)"""
    try:
        return read_checkpoint_fields(path)
    except (KeyError, ValueError, TypeError, IndexError, OSError) as e:
        raise ExportError("%s: a malformed checkpoint (%s: %s)" % (path, type(e).__name__, e))


def read_tensors(f, path, order):
    """the parameters by name, checked against the checkpoint's tensors_fnv1a"""
    h, model = FNV_BASIS, {}
    try:
        for group in ("model", "optimizer/exp_avg", "optimizer/exp_avg_sq"):
            for name in order:
                a = np.ascontiguousarray(f[group][name][()], dtype="<f4")
                h = fnv1a(h, a.tobytes())
                if group == "model":
                    model[name] = a
    except (KeyError, OSError) as e:
        raise ExportError("%s: a tensor is missing or unreadable (%s): not a usable checkpoint" % (path, e))
    if h != int(f.attrs["tensors_fnv1a"]):
        raise ExportError("%s: the tensors do not match their hash (tensors_fnv1a): the checkpoint is corrupt" % path)
    for name, a in model.items():
        if not np.isfinite(a).all():
            raise ExportError("%s: tensor %s holds NaN or infinite values" % (path, name))
    return model


def zero_suppress_of(f, path, data):
    if "zero_suppress" in data.attrs:
        return np.float32(data.attrs["zero_suppress"])
    config = json.loads(text(f.attrs.get("config", "{}")) or "{}")
    if isinstance(config.get("zero_suppress"), (int, float)):
        return np.float32(config["zero_suppress"])
    return None  # refused by build_model unless --no-preprocess


def read_inputs(f, path, version, channels):
    """the scalars (names, scales) and channel kinds, as checkpoint_peek reads them"""
    data = f["data"] if "data" in f else None
    if version < 3:  # versions 1, 2: the format's default
        return ["iphi", "ieta"], [360.0, 170.0], ["energy"] * channels
    if data is None or "scalars" not in data.attrs or "channel_kinds" not in data.attrs:
        raise ExportError("%s: checkpoint lacks the model's inputs (data: attributes scalars, channel_kinds)" % path)
    scalars = strings(data.attrs["scalars"])
    scale = [float(x) for x in np.atleast_1d(data.attrs.get("scalar_scale", []))]
    kinds = strings(data.attrs["channel_kinds"])
    if len(scale) != len(scalars) or len(kinds) != channels or set(kinds) - {"energy", "signed"}:
        raise ExportError("%s: malformed model inputs on /data (scalars %s, scalar_scale %s, channel_kinds %s)"
                          % (path, scalars, scale, kinds))
    return scalars, scale, kinds


def read_checkpoint_fields(path):
    with open_checkpoint(path) as f:
        if text(f.attrs.get("format", b"")) != CHECKPOINT_FORMAT:
            raise ExportError("%s: not an e2e-ddp checkpoint (no '%s' format attribute)" % (path, CHECKPOINT_FORMAT))
        version = int(f.attrs.get("version", -1))
        if not CHECKPOINT_VERSIONS[0] <= version <= CHECKPOINT_VERSIONS[1]:
            raise ExportError("%s: checkpoint version %d; this e2e-export reads versions %d to %d"
                              % (path, version, *CHECKPOINT_VERSIONS))
        need = ("in_channels", "height", "width", "fmaps0", "fmaps1", "blocks", "n_scalars", "epoch",
                "tensors_fnv1a", "tensor_order")
        missing = [a for a in need if a not in f.attrs]
        if missing or "data" not in f or "scales" not in f["data"]:
            raise ExportError("%s: checkpoint lacks %s" % (path, ", ".join(missing) or "/data/scales"))
        ck = {k: int(f.attrs[k]) for k in need[:8]}
        ck.update(version=version, path=path, task=text(f.attrs.get("task", b"regression")),
                  global_step=int(f.attrs.get("global_step", -1)), tensors_fnv1a=int(f.attrs["tensors_fnv1a"]))
        order = [n for n in text(f.attrs["tensor_order"]).split("\n") if n]
        ck["params"] = read_tensors(f, path, order)
        data = f["data"]
        ck["scales"] = np.asarray(data["scales"][()], dtype=np.float32)
        ck["scalars"], ck["scalar_scale"], ck["kinds"] = read_inputs(f, path, version, ck["in_channels"])
        ck["zero_suppress"] = zero_suppress_of(f, path, data)
        ck["mass_scale"] = float(np.float32(data.attrs.get("mass_scale", MASS_SCALE_GEV)))
        ck["mass_scale_recorded"] = "mass_scale" in data.attrs
        ck["fingerprint"] = {k: (text(v) if isinstance(v, (bytes, str)) else int(v))
                             for k, v in data.attrs.items() if k.startswith("data_")}
        ck["label"] = text(f.attrs["task_label"]) if "task_label" in f.attrs else ""
    check_shapes(ck)
    return ck


def check_shapes(ck):
    """the tensors are the ResNet-15 the attributes describe"""
    C, f0, f1, S = ck["in_channels"], ck["fmaps0"], ck["fmaps1"], ck["n_scalars"]
    blocks = ["layer1.%d" % i for i in range(ck["blocks"])] + ["layer2.0"] + ["layer3.%d" % i
                                                                             for i in range(ck["blocks"])]
    convs = ["conv0", "fc", "layer2.0.shortcut"] + [b + c for b in blocks for c in (".conv1", ".conv2")]
    missing = [c + t for c in convs for t in (".weight", ".bias") if c + t not in ck["params"]]
    if missing:
        raise ExportError("%s: the model of %d blocks lacks tensors %s" % (ck["path"], ck["blocks"],
                                                                          ", ".join(missing[:4])))
    want = {"conv0.weight": (f0, C, 7, 7), "fc.weight": (1, f1 + S), "layer2.0.shortcut.weight": (f1, f0, 1, 1)}
    for name, shape in want.items():
        got = ck["params"].get(name)
        if got is None or got.shape != shape:
            raise ExportError("%s: tensor %s is %s, the model's attributes (in_channels %d, fmaps %d/%d, n_scalars %d) "
                              "want %s" % (ck["path"], name, None if got is None else got.shape, C, f0, f1, S, shape))
    if len(ck["scales"]) != C or len(ck["kinds"]) != C or len(ck["scalars"]) != S:
        raise ExportError("%s: %d scales, %d channel kinds and %d scalars for a model of %d channels and %d scalars"
                          % (ck["path"], len(ck["scales"]), len(ck["kinds"]), len(ck["scalars"]), C, S))
    if not (np.isfinite(ck["scales"]).all() and (ck["scales"] > 0).all()):
        raise ExportError("%s: /data/scales holds a scale that is not positive and finite: %s"
                          % (ck["path"], ck["scales"]))


# ---- the graph ----

class Graph:
    """nodes and constants of an ONNX graph under construction, with fresh names"""

    def __init__(self):
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, name, array):
        self.inits.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, name=None, **attrs):
        self.n += 1
        out = name or "%s_%d" % (op_type.lower(), self.n)
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], name="n%d_%s" % (self.n, op_type),
                                                **attrs))
        return out

    def conv(self, x, params, prefix, stride=1, pad=1):
        w = self.const(prefix + ".weight", params[prefix + ".weight"])
        b = self.const(prefix + ".bias", params[prefix + ".bias"])
        k = params[prefix + ".weight"].shape[2]
        return self.op("Conv", [x, w, b], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)


def preprocess_pixels(g, x, ck):
    """prep_pixel.h on every pixel: v = x * (1/scale); v = 0 where v (signed: |v|) <
    zero_suppress, NaN too; clipped to [0, 1] (signed: [-1, 1]); per channel"""
    C = ck["in_channels"]
    factor = (np.float32(1) / ck["scales"]).astype(np.float32).reshape(1, C, 1, 1)
    signed = np.array([k == "signed" for k in ck["kinds"]]).reshape(1, C, 1, 1)
    v = g.op("Mul", [x, g.const("prep.factor", factor)])
    mag = g.op("Where", [g.const("prep.signed", signed), g.op("Abs", [v]), v]) if signed.any() else v
    zero = g.const("prep.zero", np.float32(0))
    v = g.op("Where", [g.op("GreaterOrEqual", [mag, g.const("prep.zero_suppress", np.float32(ck["zero_suppress"]))]),
                       v, zero])
    if signed.any():  # energy-like channels are >= 0 (or 0) here: their lower bound is -inf, no change
        low = g.const("prep.low", np.where(signed, np.float32(-1), np.float32(-np.inf)).astype(np.float32))
        v = g.op("Where", [g.op("Greater", [v, low]), v, low])
    one = g.const("prep.one", np.float32(1))
    return g.op("Where", [g.op("Less", [v, one]), v, one], name="X_jet_preprocessed")


def residual_block(g, x, params, prefix, downsample):
    out = g.conv(g.op("Relu", [g.conv(x, params, prefix + ".conv1", stride=2 if downsample else 1)]), params,
                 prefix + ".conv2")
    skip = g.conv(x, params, prefix + ".shortcut", stride=2, pad=0) if downsample else x
    return g.op("Relu", [g.op("Add", [out, skip])])


def resnet15(g, x, scalars, ck):
    """tests/reference/resnet15.py's forward: the network's raw output, (batch, 1)"""
    p = ck["params"]
    x = g.op("MaxPool", [g.op("Relu", [g.conv(x, p, "conv0")])], kernel_shape=[2, 2], strides=[2, 2])
    for i in range(ck["blocks"]):
        x = residual_block(g, x, p, "layer1.%d" % i, False)
    x = residual_block(g, x, p, "layer2.0", True)
    for i in range(ck["blocks"]):
        x = residual_block(g, x, p, "layer3.%d" % i, False)
    x = g.op("Flatten", [g.op("GlobalMaxPool", [x])], axis=1)
    if scalars:
        x = g.op("Concat", [x, scalars], axis=1)
    return g.op("Gemm", [x, g.const("fc.weight", p["fc.weight"]), g.const("fc.bias", p["fc.bias"])], transB=1)


def output(g, y, ck):
    """(batch,) mass_gev = y x mass_scale, or score = sigmoid(y); in float64 as e2e-eval"""
    y = g.op("Cast", [g.op("Flatten", [y], axis=0)], to=11)  # (1, batch) float64
    y = g.op("Squeeze", [y, g.const("axes0", np.array([0], dtype=np.int64))])
    if ck["task"] == "classification":
        one = g.const("one_f64", np.float64(1))
        y = g.op("Div", [one, g.op("Add", [one, g.op("Exp", [g.op("Neg", [y])])])])
        return g.op("Cast", [y], name="score", to=1), "score"
    y = g.op("Mul", [y, g.const("mass_scale", np.float64(ck["mass_scale"]))])
    return g.op("Cast", [y], name="mass_gev", to=1), "mass_gev"


def build_model(ck, nhwc, preprocess, opset):
    import onnx
    from onnx import TensorProto, helper
    g = Graph()
    C, H, W, S = ck["in_channels"], ck["height"], ck["width"], ck["n_scalars"]
    shape = ["batch", H, W, C] if nhwc else ["batch", C, H, W]
    inputs = [helper.make_tensor_value_info("X_jet", TensorProto.FLOAT, shape)]
    x = g.op("Transpose", ["X_jet"], perm=[0, 3, 1, 2]) if nhwc else "X_jet"
    if preprocess and ck["zero_suppress"] is None:
        raise ExportError("%s: the checkpoint records no zero-suppression threshold (attribute zero_suppress on "
                          "/data, or zero_suppress in its config): the preprocessing cannot be rebuilt; export it "
                          "with --no-preprocess" % ck["path"])
    if preprocess:
        x = preprocess_pixels(g, x, ck)
    scalars = None
    if S:
        inputs.append(helper.make_tensor_value_info("scalars", TensorProto.FLOAT, ["batch", S]))
        scale = np.array(ck["scalar_scale"], dtype=np.float64).astype(np.float32).reshape(1, S)
        scalars = g.op("Div", ["scalars", g.const("scalar_scale", scale)]) if preprocess else "scalars"
    y = resnet15(g, x, scalars, ck)
    _, out_name = output(g, y, ck)
    outputs = [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch"])]
    graph = helper.make_graph(g.nodes, "e2e_resnet15_" + ck["task"], inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="e2e-ddp",
                              producer_version=project_version())
    model.ir_version = helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
    model.doc_string = describe(ck, nhwc, preprocess, out_name)
    helper.set_model_props(model, metadata(ck, nhwc, preprocess, out_name))
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    check_shapes_inferred(model)
    return model


def check_shapes_inferred(model):
    """every value of the graph has a known element type and rank (shape inference complete)"""
    known = {v.name: v for v in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)}
    for node in model.graph.node:
        for name in node.output:
            v = known.get(name)
            if v is None or not v.type.tensor_type.HasField("shape"):
                raise ExportError("internal: shape inference left %s (%s) without a shape" % (name, node.op_type))


def describe(ck, nhwc, preprocess, out_name):
    layout = "(batch, H, W, C)" if nhwc else "(batch, C, H, W)"
    what = "raw pixel values as stored in the jet files" if preprocess else "preprocessed pixels (as the reader gives them)"
    s = "e2e-ddp ResNet-15, %s. X_jet %s float32: %s." % (ck["task"], layout, what)
    if ck["n_scalars"]:
        s += " scalars (batch, %d): %s%s." % (ck["n_scalars"], ", ".join(ck["scalars"]),
                                              " raw (the graph divides by scalar_scale)" if preprocess else " scaled")
    return s + " Output %s (batch,)." % out_name


def metadata(ck, nhwc, preprocess, out_name):
    """the model's metadata_props: strings; lists and numbers as JSON"""
    fp = ck["fingerprint"]
    names = fp.get("data_channel_names", "")
    props = {
        "e2e.format": "e2e-ddp onnx export 1", "e2e.version": project_version(), "task": ck["task"],
        "checkpoint": os.path.basename(ck["path"]), "checkpoint_version": str(ck["version"]),
        "checkpoint_epoch": str(ck["epoch"]), "checkpoint_global_step": str(ck["global_step"]),
        "checkpoint_tensors_fnv1a": "%016x" % ck["tensors_fnv1a"],
        "input_layout": "NHWC" if nhwc else "NCHW", "preprocess": "true" if preprocess else "false",
        "inputs": json.dumps(["X_jet"] + (["scalars"] if ck["n_scalars"] else [])), "output": out_name,
        "channels": json.dumps(names.split(",") if names else []),
        "channel_kinds": json.dumps(ck["kinds"]),
        "scales": json.dumps([float(s) for s in ck["scales"]]),
        "zero_suppress": json.dumps(None if ck["zero_suppress"] is None else float(ck["zero_suppress"])),
        "clip": "energy channels [0, 1], signed channels [-1, 1] (sign kept)",
        "scalars": json.dumps(ck["scalars"]), "scalar_scale": json.dumps(ck["scalar_scale"]),
        "image_height": str(ck["height"]), "image_width": str(ck["width"]),
    }
    if ck["task"] == "classification":
        props["label"] = ck["label"]
    else:
        props["mass_scale"] = json.dumps(ck["mass_scale"])
        props["mass_scale_source"] = ("checkpoint" if ck["mass_scale_recorded"] else
                                      "the format's constant 500 GeV (the checkpoint predates the attribute)")
    props["data_fingerprint"] = json.dumps(fp, sort_keys=True) if fp else "not recorded (an older checkpoint)"
    return props


# ---- writing ----

def check_output(out, ckpt, force):
    """refuses an output that is the checkpoint, a folder, or an existing file without
    --force (with it, still never an HDF5 file: a checkpoint or a data file)"""
    if os.path.isdir(out):
        raise ExportError("%s: is a folder; give the ONNX file's path with -o" % out)
    if os.path.exists(out):
        if os.path.samefile(out, ckpt):
            raise ExportError("%s: is the checkpoint being exported (an input); give another -o" % out)
        if not force:
            raise ExportError("%s: exists; give --force to replace it, or another -o" % out)
        with open(out, "rb") as f:
            if f.read(8) == b"\x89HDF\r\n\x1a\n":
                raise ExportError("%s: is an HDF5 file (a checkpoint or jet data?), not an ONNX file: not replaced "
                                  "even with --force; remove it first or give another -o" % out)
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ExportError("%s: cannot write into the folder %s" % (out, folder))


def write_atomically(model, out):
    """a temporary .NAME.partial-PID beside out, fsync'ed, renamed over out; on any
    failure removed, and out left as it was"""
    folder, base = os.path.split(os.path.abspath(out))
    tmp = os.path.join(folder, ".%s.partial-%d" % (base, os.getpid()))
    try:
        data = model.SerializeToString()
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except (OSError, ValueError) as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise ExportError("%s: %s: nothing was written" % (out, getattr(e, "strerror", None) or e))
    return len(data)


def parse_args(argv):
    import onnx
    p = argparse.ArgumentParser(prog="e2e-export", description=(
        "Exports an e2e-ddp checkpoint as an ONNX graph for ONNX Runtime (CMSSW's cms::Ort::ONNXRuntime): "
        "input X_jet (batch, C, H, W) float32 raw pixels (the graph preprocesses them as the reader does), "
        "scalars (batch, S) raw where the model has scalars; output mass_gev (regression) or score "
        "(classification), (batch,). Exit codes: 0 done, 1 error, 2 bad command line."))
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="e.g. RUNDIR/checkpoints/best.h5")
    p.add_argument("-o", "--out", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--nhwc", action="store_true", help="X_jet is (batch, H, W, C), the E2E CMSSW producers' frames")
    p.add_argument("--no-preprocess", action="store_true",
                   help="X_jet and scalars are already preprocessed (scaled, zero-suppressed, clipped); the output "
                        "is still mass_gev or score")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help="ONNX opset, %d to %d (%d)" % (DEFAULT_OPSET, onnx.defs.onnx_opset_version(), DEFAULT_OPSET))
    p.add_argument("--force", action="store_true", help="replace an existing OUT.onnx")
    a = p.parse_args(argv)
    if not DEFAULT_OPSET <= a.opset <= onnx.defs.onnx_opset_version():
        p.error("--opset %d: give %d to %d" % (a.opset, DEFAULT_OPSET, onnx.defs.onnx_opset_version()))
    return a


def main(argv):
    a = parse_args(argv)
    try:
        if not os.path.exists(a.checkpoint):
            raise ExportError("%s: cannot read the checkpoint (no such file)" % a.checkpoint)
        check_output(a.out, a.checkpoint, a.force)
        ck = read_checkpoint(a.checkpoint)
        model = build_model(ck, a.nhwc, not a.no_preprocess, a.opset)
        size = write_atomically(model, a.out)
    except ExportError as e:
        print("e2e-export: %s" % e, file=sys.stderr)
        return 1
    print("e2e-export: %s: %s ResNet-15 (epoch %d), %s, %s, opset %d, %d bytes" % (
        a.out, ck["task"], ck["epoch"], "NHWC" if a.nhwc else "NCHW",
        "raw inputs (preprocessing in the graph)" if not a.no_preprocess else "preprocessed inputs", a.opset, size))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
