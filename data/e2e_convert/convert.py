"""One run of e2e-convert: check the command against the output, open and check every
source, plan the output, stream the rows through the decoding processes into the
writer, write the attributes, rename. No output is left behind after a failure (with
--append or --force: OUT exactly as it was)."""
import os
import shlex
import shutil
import sys
import time

import numpy as np

from . import GENERATOR, PROG
from .detect import open_source
from .errors import Bad
from .layout import shape_str
from .output import Syncer, check_space, close_output, commit, is_disk_full, open_output, partial_name, release
from .plan import attr_strings, plan_run
from .plausible import FileChecks
from .progress import Progress
from .workers import Decoders
from .writers import WRITERS, writer_of_file

FORMAT_NAME = "e2e-jet-images"


def default_chunk(rows, row_bytes):
    """as e2e-synth: about 4 MiB a chunk, at least 64 chunks where the file allows"""
    c = (4 << 20) // max(1, row_bytes)
    c = min(c, (rows + 63) // 64)
    return max(1, c)


def file_id(path):
    """the file behind a path (device, inode): other names, symbolic and hard links alike"""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def check_paths(a):
    out_dir = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(out_dir):
        raise Bad("%s: the folder %s does not exist" % (a.out, out_dir))
    if os.path.isdir(a.out):
        raise Bad("%s: is a folder; -o needs a file name" % a.out)
    exists = os.path.exists(a.out)
    if a.append and not exists:
        raise Bad("%s: no such file to append to (leave out --append to create it)" % a.out)
    if exists and not a.append and not a.force:
        raise Bad("%s: exists; pass --append to add rows to it or --force to replace it" % a.out)
    out_id, seen = file_id(a.out), {}
    for p in a.inputs:
        i = file_id(p)
        if i is not None and i == out_id:
            raise Bad("%s: is both an input and the output %s (the same file)" % (p, a.out))
        if i is not None and i in seen:
            raise Bad("%s: is listed twice (the same file as %s)" % (p, seen[i]))
        seen[i] = p
    return out_dir


def read_existing(a):
    """what --append needs to know of OUT"""
    import h5py

    try:
        f = h5py.File(a.out, "r")
    except OSError as e:
        raise Bad("%s: cannot open as HDF5 to append to it (%s)" % (a.out, e))
    with f:
        if f.attrs.get("format") not in (FORMAT_NAME, FORMAT_NAME.encode()):
            raise Bad("%s: not an e2e jet-image file (no format attribute '%s')" % (a.out, FORMAT_NAME))
        w = writer_of_file(f)
        if w is None:
            raise Bad("%s: a layout this program cannot append to" % a.out)
        old = w.describe(f, a.out)
        old["writer"] = w
        old["channels"] = attr_strings(f, "channels") or []
        old["kinds"] = attr_strings(f, "channel_kinds")
        old["scalars"] = attr_strings(f, "scalars") if "scalars" in f.attrs else None
        old["scalar_scale"] = [float(v) for v in f.attrs["scalar_scale"]] if "scalar_scale" in f.attrs else None
        old["source_files"] = attr_strings(f, "source_files") or []
        old["source_rows"] = [int(v) for v in f.attrs.get("source_rows", [])]
        old["command"] = str(f.attrs.get("command", ""))
        old["source"] = str(f.attrs.get("source", ""))
        old["pixel_size"] = float(f.attrs.get("pixel_size", a.pixel_size))
    if a.dtype and a.dtype != old["dtype"]:
        raise Bad("%s: stores X_jet as %s; cannot append as --dtype %s" % (a.out, old["dtype"], a.dtype))
    for p in a.inputs:
        if os.path.basename(p) in old["source_files"]:
            raise Bad("%s: %s already holds the rows of a file named %s (attribute source_files); appending "
                      "them again would put the same jets twice, possibly in training and test; rename the "
                      "file if it holds other jets" % (p, a.out, os.path.basename(p)))
    return old


def source_words(sources):
    """'parquet: a, b; hdf5: c' in file order"""
    parts = []
    for s in sources:
        name = os.path.basename(s.path)
        if parts and parts[-1][0] == s.kind:
            parts[-1][1].append(name)
        else:
            parts.append((s.kind, [name]))
    return "; ".join("%s: %s" % (k, ", ".join(v)) for k, v in parts)


def write_attrs(f, a, p, writer, old, files, rows, command, source):
    import h5py

    s = h5py.string_dtype("utf-8")
    f.attrs["format"] = FORMAT_NAME
    f.attrs["format_version"] = np.int32(writer.format_version)
    f.attrs.create("channels", data=p.channels, dtype=s)
    if p.kinds is not None:
        f.attrs.create("channel_kinds", data=p.kinds, dtype=s)
    if p.scalars is not None:
        f.attrs.create("scalars", data=np.array(p.scalars, dtype=object), shape=(len(p.scalars),), dtype=s)
        f.attrs.create("scalar_scale", data=np.asarray(p.scales, np.float64), shape=(len(p.scales),))
    f.attrs["pixel_size"] = np.float64(old["pixel_size"] if old else a.pixel_size)
    f.attrs["source"] = source
    f.attrs.create("source_files", data=files, dtype=s)
    f.attrs["source_rows"] = np.asarray(rows, dtype=np.int64)
    f.attrs["generator"] = GENERATOR
    f.attrs["command"] = command


def describe_run(a, sources, p, dtype, n0, new_rows, old):
    say = sys.stderr.write
    say("%s: %d jets from %d file%s, images %s -> X_jet %s %s in %s (%s)\n" % (
        PROG, new_rows, len(sources), "" if len(sources) == 1 else "s", p.image[0].words(), shape_str(p.chw),
        dtype, a.out, "after its %d rows" % n0 if old else "a new file"))
    for s, roles, spec, (extras, skipped) in zip(sources, p.roles, p.image, p.extras):
        cols = ["%s->%s" % (v, k) if v != k else k for k, v in roles.items()] + extras + \
            ["%s = %d (stamped)" % (o.name, o.constant) for o in p.outs if o.constant is not None]
        say("%s:   %s (%s): %s%s\n" % (PROG, s.path, s.kind, ", ".join(cols),
                                        "; not copied: " + ", ".join("%s (%s)" % c for c in skipped) if skipped else ""))
    say("%s:   channels %s; scalars %s\n" % (
        PROG, ", ".join("%s (%s)" % (c, k) for c, k in zip(p.channels, p.kinds or ["energy"] * len(p.channels))),
        "iphi/360, ieta/170 (the file's, no attribute)" if p.scalars is None else
        ", ".join("%s/%g" % (n, v) for n, v in zip(p.scalars, p.scales)) or "none"))
    if "m" not in p.roles[0]:
        say("%s:   no mass (m): a classifier's file (label column %s); a regression refuses it\n" % (PROG, a.label))


def convert(a, argv):
    t_start = time.monotonic()
    out_dir = check_paths(a)
    old = read_existing(a) if a.append else None
    dtype = old["dtype"] if old else (a.dtype or "float32")
    writer_cls = old["writer"] if old else WRITERS[a.store]
    sources = [open_source(path) for path in a.inputs]
    p = plan_run(a, sources, old, dtype)

    new_rows = sum(s.rows for s in sources)
    n0 = old["n"] if old else 0
    total = n0 + new_rows
    C, H, W = p.chw
    row_bytes = C * H * W * (4 if dtype == "float32" else 2)
    chunk_rows = old["chunk"] if old else (a.chunk or default_chunk(new_rows, row_bytes))
    files = (old["source_files"] if old else []) + [os.path.basename(s.path) for s in sources]
    rows = (old["source_rows"] if old else []) + [s.rows for s in sources]
    command = " ".join(shlex.quote(v) for v in [PROG] + argv)
    source = source_words(sources)
    if old:
        command = old["command"] + "\n" + command if old["command"] else command
        source = old["source"] + "; " + source if old["source"] else source

    tmp = partial_name(a.out)
    estimate = getattr(writer_cls, "estimate_bytes", None)
    need = estimate(total, p.chw, dtype, p.outs) if estimate else (total * row_bytes if writer_cls.name == "dense" else 0)
    check_space(a.out, need + (os.path.getsize(a.out) if old else 0) + (1 << 20))
    decoders = syncer = None
    try:
        if not a.quiet:
            describe_run(a, sources, p, dtype, n0, new_rows, old)
        tm = {"copy of the original": 0.0, "decode wait": 0.0, "HDF5 write": 0.0}
        t0 = time.monotonic()
        if old:
            shutil.copyfile(a.out, tmp)  # the original stays untouched until the rename
            os.chmod(tmp, os.stat(a.out).st_mode & 0o7777)
        tm["copy of the original"] = time.monotonic() - t0
        f = open_output(tmp, "r+" if old else "w-", chunk_rows * row_bytes)
        try:
            writer = writer_cls(f)
            if old:
                writer.grow(n0, total, p.outs)
            else:
                writer.create(total, p.chw, dtype, chunk_rows, p.outs)
            syncer = Syncer(tmp)
            tasks = [(fi, t) for fi, s in enumerate(sources) for t in s.tasks(4 * a.batch)]
            coltypes = [o.dtype for o in p.outs]
            decoders = Decoders([s.reader() for s in sources], tasks, p.specs, a.batch, p.chw, dtype, coltypes,
                                min(a.jobs, len(tasks)), out_dir)
            prog = Progress(new_rows, row_bytes, a.quiet)
            at = stream(a, sources, p, decoders, writer, syncer, prog, tm, n0, row_bytes)
            if at != total:
                raise Bad("%s: the files promised %d rows but %d were read (damaged file?)"
                          % (", ".join(a.inputs), new_rows, at - n0))
            write_attrs(f, a, p, writer, old, files, rows, command, source)
            t0 = time.monotonic()
            # what HDF5 still caches (the sparse layout's small chunks: all of a small
            # file) goes to the disk here, where a full disk can still be handled below,
            # not in the close
            f.flush()
        except BaseException as e:
            if is_disk_full(e):
                release(tmp)  # frees the disk for the close's flush of what is not cached
            try:
                close_output(f)
            except (OSError, RuntimeError):
                pass  # the first failure is the one to report
            raise
        close_output(f)
        tm["HDF5 write"] += time.monotonic() - t0  # the flush and the close
        decoders.close()
        decoders = None
        t0 = time.monotonic()
        syncer.close()
        syncer = None
        commit(tmp, a.out)
        tm["sync to disk"] = time.monotonic() - t0
        prog.update(new_rows, final=True)
        summary(a, sources, p, dtype, new_rows, row_bytes, time.monotonic() - t_start, tm, old, total, len(files))
    finally:
        if decoders is not None:
            decoders.close()
        if syncer is not None:
            try:
                syncer.close()
            except OSError:
                pass
        if os.path.exists(tmp):
            os.unlink(tmp)


def summary(a, sources, p, dtype, new_rows, row_bytes, seconds, tm, old, total, files):
    """the closing lines on standard output: totals and where the time went"""
    el = max(seconds, 1e-9)
    print("%s: wrote %d jets (%s %s) to %s in %.1f s: %.0f jets/s, %.0f MB/s written, %.1f MB/s of input "
          "read (%s)" % (PROG, new_rows, shape_str(p.chw), dtype, a.out, el, new_rows / el,
                         new_rows * row_bytes / 1e6 / el, sum(s.bytes for s in sources) / 1e6 / el,
                         ", ".join("%s %.1f s" % kv for kv in tm.items() if old or kv[0] != "copy of the original")))
    if old:
        print("%s: %s now holds %d jets from %d files" % (PROG, a.out, total, files))


def stream(a, sources, p, decoders, writer, syncer, prog, tm, n0, row_bytes):
    """writes the batches in file order; returns the row after the last one written"""
    base = [n0]
    for s in sources:
        base.append(base[-1] + s.rows)
    checks = [FileChecks(s.path, s.rows, p.channels, p.check_kinds, a.mass_unit) for s in sources]
    names = [o.name for o in p.outs]
    im = names.index("m") if "m" in names else None  # a classifier's file may have no mass
    at = n0
    it = decoders.batches()
    while True:
        t0 = time.monotonic()
        got = next(it, None)
        t1 = time.monotonic()
        tm["decode wait"] += t1 - t0
        if got is None:
            return at
        fi, row, x, cols, stats = got
        pos = base[fi] + row
        if pos != at:
            raise Bad("%s: rows arrived out of order (internal error)" % sources[fi].path)
        checks[fi].add(cols[im] if im is not None else None, stats, len(x))
        writer.write(pos, x, cols)
        at += len(x)
        syncer.wrote(len(x) * row_bytes)
        tm["HDF5 write"] += time.monotonic() - t1
        prog.update(at - n0)
