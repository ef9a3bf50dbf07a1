#!/usr/bin/env python3
"""Inputs that are not what they seem, records that must say what happened, and messages
that must help (issue 28), end to end under real mpirun (2 ranks, CPU), on files made by
e2e-synth and h5py. One test per subcommand:

  values      pixels no detector gives: every pixel negative (refused, as an all-zero file
              is), zeros and negative values only (refused), an energy-like channel of
              mostly negative pixels (a warning naming the channel and channel_kinds),
              pixels above 1e7 (a warning), one rank prints each warning once
  formats     a `format` naming another format, our format at version 99 or 0, a version
              that is a string: refused naming the file; version 1 and no attributes: fine
  shapes      channel-last files without a `channels` attribute (32x32x8, 40x40x5,
              16x16x1): refused saying so; the same with 32 channel names: trains
  resume      a resumed run given --lr, --seed, --blocks, --weight-decay, --zero-suppress,
              --unbias: config.json and the checkpoints it writes record the checkpoint's
              values (what is in force), the banner says which were ignored
  messages    a file-list line of 520 characters (./././...) trains; a path longer than
              MPI-IO takes is refused with the reason, no crash; a 1-jet file and a 30-jet
              file say how many jets the split needs
  launcher    mpirun killed (SIGKILL) mid-training: its ranks end within a second or two,
              saying why, and write nothing more

usage: test_claims.py TEST BUILD_DIR
"""
import json
import os
import re
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_no_loss import Env, ours, refused, run_env  # noqa: E402
from launcher_kill import kill_launcher_midrun, written_after  # noqa: E402
from test_train_e2e import ENV, MPIRUN, check, run_test  # noqa: E402


def copy_with(src, dst, images=None, attrs=None, drop=()):
    """a copy of jet file src with X_jet replaced by images (a function of the old X) and
    root attributes set (None deletes)"""
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        x = f["X_jet"][()]
        g.create_dataset("X_jet", data=images(x) if images else x, chunks=True)
        for k in ("m", "pt", "ieta", "iphi"):
            g[k] = f[k][()]
        for k, v in f.attrs.items():
            if k not in drop:
                g.attrs[k] = v
        for k, v in (attrs or {}).items():
            if v is None:
                g.attrs.pop(k, None)
            else:
                g.attrs[k] = v
    return dst


def warnings_of(p):
    return [l for l in p.stderr.splitlines() if "warning:" in l]


def t_values(e):
    neg = copy_with(e.data, e.path("neg.h5"), lambda x: -np.abs(x) - 0.01)
    p = e.train(e.path("r_neg"), data=neg, expect=1)
    refused(p, "neg.h5", "no positive pixel", "negative", what="a file of negative pixels")
    zneg = copy_with(e.data, e.path("zneg.h5"), lambda x: np.where(x > 0, -x, 0).astype(np.float32))
    p = e.train(e.path("r_zneg"), data=zneg, expect=1)
    refused(p, "zneg.h5", "no detector measures a negative", what="zeros and negative pixels only")

    def flip_ecal(x):  # channel 1 ('ecal') negative where it was positive, the others as they were
        y = x.copy()
        y[:, 1] = -y[:, 1]
        return y
    flipped = copy_with(e.data, e.path("flip.h5"), flip_ecal)
    p = e.train(e.path("r_flip"), data=flipped, epochs=1)
    w = [l for l in warnings_of(p) if "negative pixels" in l]
    check(p.returncode == 0 and len(w) == 1 and "channel 1 ('ecal')" in w[0] and "channel_kinds" in w[0],
          "an energy-like channel of negative pixels trains with one warning naming it: %s" % w)

    def huge(x):
        y = x.copy()
        y[::7, 2, 3, 3] = 3e12
        return y
    big = copy_with(e.data, e.path("huge.h5"), huge)
    p = e.train(e.path("r_huge"), data=big, epochs=1)
    w = [l for l in warnings_of(p) if "above 1e+07" in l]
    check(p.returncode == 0 and len(w) == 1 and "channel 2 ('hcal')" in w[0] and "no detector" in w[0],
          "pixels of 3e12 train with one warning: %s" % w)
    p = e.train(e.path("r_plain"), epochs=1)
    check(p.returncode == 0 and not [l for l in warnings_of(p) if "pixels" in l],
          "the plain synthetic file: no pixel warning (%s)" % warnings_of(p))


def t_formats(e):
    for name, attrs, words in (
            ("ckpt_fmt", {"format": "e2e-ddp checkpoint"}, ["says 'e2e-ddp checkpoint'", "not e2e-jet-images"]),
            ("other_fmt", {"format": "hdf5-images"}, ["says 'hdf5-images'"]),
            ("v99", {"format_version": np.int32(99)}, ["format version 99", "a newer e2e-ddp wrote it"]),
            ("v0", {"format_version": np.int32(0)}, ["format version 0", "knows versions 1"]),
            ("vstr", {"format_version": "2"}, ["'format_version' attribute is not an integer"])):
        path = copy_with(e.data, e.path(name + ".h5"), attrs=attrs)
        p = e.train(e.path("r_" + name), data=path, expect=1)
        refused(p, name + ".h5", *words, what="a file claiming %s" % attrs)
        p = run_env([e.exe("e2e-data"), "info", path], expect=1)
        refused(p, name + ".h5", words[0], what="e2e-data info on it")
    bare = copy_with(e.data, e.path("bare.h5"), drop=("format", "format_version"))
    e.train(e.path("r_bare"), data=bare, epochs=1, expect=0)
    check(True, "a file without format attributes trains")


def t_shapes(e):
    for c, size in ((8, 32), (5, 40), (1, 16)):
        src = e.synth("src_%d.h5" % c, 120, channels=max(c, 3) if c != 1 else 3, size=size)
        path = copy_with(src, e.path("last_%d.h5" % c),
                         lambda x, c=c: np.ascontiguousarray(np.moveaxis(x[:, :c] if c <= x.shape[1] else x, 1, 3)),
                         drop=("channels",))
        p = e.train(e.path("r_last_%d" % c), data=path, expect=1)
        refused(p, "looks stored channel-last", "%d x %d images of %d channels" % (size, size, c),
                what="a %dx%dx%d channel-last file" % (size, size, c))
    named = copy_with(e.path("last_8.h5"), e.path("named.h5"), attrs={"channels": ["c%d" % i for i in range(32)]})
    p = run_env([e.exe("e2e-data"), "info", named], expect=0)
    check("X_jet 32 x 32 x 8" in p.stdout, "32 channels named: read as declared, 32 channels of 32 x 8 images")


def config_of(ckpt):
    with h5py.File(ckpt, "r") as f:
        c = f.attrs["config"]
        return json.loads(c.decode() if isinstance(c, bytes) else c)


def t_resume(e):
    d = e.path("resumed")
    e.train(d, "--stop-after-steps", "5", expect=75)
    before = json.load(open(os.path.join(d, "config.json")))
    asked = ["--lr", "0.5", "--seed", "9", "--blocks", "1", "--weight-decay", "0.1", "--zero-suppress", "0.3",
             "--unbias", "none"]
    p = e.train(d, "--resume", "auto", *asked, epochs=2)
    now = json.load(open(os.path.join(d, "config.json")))
    if before["unbias"] == -1:  # the fresh run recorded "the data's default": weights (1), what is in force
        before["unbias"] = 1
    same = ("lr", "seed", "blocks", "weight_decay", "zero_suppress", "unbias", "lr_scaling", "warmup_steps", "plateau")
    check(all(now[k] == before[k] for k in same), "config.json of the resumed run records the checkpoint's values: %s"
          % {k: (before[k], now[k]) for k in same if now[k] != before[k]})
    ignored = re.search(r"ignored on resume.*", p.stdout)
    check(ignored and all(o in ignored.group(0) for o in asked[::2]),
          "the banner lists every ignored option: %s" % (ignored.group(0)[:300] if ignored else p.stdout[-500:]))
    ck = config_of(os.path.join(d, "checkpoints", "best.h5"))
    check(all(ck[k] == before[k] for k in same) and ck["epochs"] == 2,
          "the checkpoint written after the resume records them too (and the epochs asked)")


def t_messages(e):
    lists = e.path("lists")
    os.makedirs(lists)
    os.symlink(e.data, os.path.join(lists, "jets.h5"))
    lst = os.path.join(lists, "long.txt")
    open(lst, "w").write("./" * 256 + "jets.h5\n")
    e.train(e.path("r_long"), data=lst, epochs=1, expect=0)
    check(True, "a list line of 519 characters (./ repeated) trains: the path is tidied before MPI-IO opens it")
    deep = e.tmp
    while len(deep) < 300:
        deep = os.path.join(deep, "a_rather_long_folder_name_%d" % len(deep))
    os.makedirs(deep)
    os.symlink(e.data, os.path.join(deep, "jets.h5"))
    p = e.train(e.path("r_deep"), data=os.path.join(deep, "jets.h5"), expect=1)
    refused(p, "Open MPI's MPI-IO cannot open a path longer than 240", "shorter path",
            what="a path of %d characters" % len(deep))
    check("buffer overflow" not in p.stderr, "no crash inside MPI-IO")
    for n, words in ((1, ["more ranks than samples", "at least 36 jets", "a list of files"]),
                     (30, ["split", "at least 36 jets", "use a larger file"])):
        small = e.synth("small_%d.h5" % n, n)
        p = e.train(e.path("r_small_%d" % n), data=small, expect=1)
        refused(p, *words, what="a %d-jet file" % n)


def t_launcher(e):
    out = e.path("orphans")
    errf = e.path("orphans.err")
    train = "exec %s --data %s --out %s --epochs 300 --batch 16 --log-every 100000 2>>%s" % (
        e.exe("e2e-train"), e.data, out, errf)
    ck = os.path.join(out, "checkpoints")
    ranks, killed, took = kill_launcher_midrun(MPIRUN, ENV, train, ck)
    check(len(ranks) == 2, "2 ranks training (%s)" % ranks)
    check(took < 2.0, "both ranks ended %.2f s after mpirun was killed" % took)
    lines = [l for l in open(errf).read().splitlines() if "launcher" in l]
    check(len(lines) == 2 and all("is gone, the job was killed" in l and "writing nothing more" in l for l in lines),
          "each says why: %s" % lines[:1])
    late = written_after(ck, killed)
    check(not late, "no checkpoint written after the kill: %s" % late)


TESTS = {"values": t_values, "formats": t_formats, "shapes": t_shapes, "resume": t_resume, "messages": t_messages,
         "launcher": t_launcher}

if __name__ == "__main__":
    sys.exit(run_test(TESTS, __doc__, Env))
