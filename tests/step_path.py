#!/usr/bin/env python3
"""The path of a window of the trainer through the source files (tests/step_path.sh runs it).

  step_path.py path EXE SRC TRACE TITLE   the stops of one trace of tests/step_trace.c
  step_path.py loc SRC                    lines of code per folder, the 10 longest files

Definitions (the same for any layout of the tree):
  file      where a function is defined (nm -l on EXE), relative to SRC. A function
            defined in a header (.h: static inline, or code a .c includes) belongs to
            the file that called it, like a static function of that file.
  stop      the file control is in; a new stop each time control moves to another
            file, by a call or by a return (consecutive calls in one file: one stop).
  return    a stop reached by returning (control comes back to a file of the chain).
  layer     launch 3, dist 2, data 1, net 1, net/base 0 (launch -> dist -> {data, net}
            -> net/base); the top folder of the file, net/base counted apart from net.
  climb     a stop reached by a call (not a return) into a higher layer: data, net or
            net/base calling into dist, dist into launch, net/base into net or data.
  crossing  a stop in another layer than the stop before (calls and returns).
  round trip a return into dist from a lower layer: dist -> data -> dist,
            dist -> net -> dist, dist -> net/base -> dist (counted apart).
  kernels   calls from a file of net/cpu or net/cuda (the backend: convolutions, GEMM,
            workspace) to another file there stay in the caller's stop, as if inline:
            they would be most of the stops of a step and no layout moves them. The
            unfolded count is printed too. STEP_PATH_LEAVES="" (folders, blank-separated)
            unfolds them.
  repeats   a block of stops repeated back to back (a loop: per layer, per sample,
            per weight) is listed once as "N x [ ... ]" (greedy: the repeat covering
            the most stops first, nested). The table's first row counts the path so,
            each block once, so that counts do not depend on batch, image or model
            size; the second row counts every repetition.
"""
import os
import subprocess
import sys
from collections import Counter

RANK = {"launch": 3, "dist": 2, "data": 1, "net": 1, "net/base": 0}


def symbols(exe, src):
    """address -> source file (relative to src) of every function of exe with debug info."""
    root = os.path.realpath(src)
    text = subprocess.run(["nm", "-l", "--defined-only", exe], check=True,
                          capture_output=True, text=True).stdout
    files = {}
    for line in text.splitlines():
        head, _, where = line.partition("\t")
        parts = head.split()
        if len(parts) != 3 or parts[1] not in "tTwW" or not where:
            continue
        path = os.path.realpath(where.rsplit(":", 1)[0])
        rel = os.path.relpath(path, root) if path.startswith(root + os.sep) else path
        files.setdefault(int(parts[0], 16), rel)
    return plt_stubs(exe, files)


def plt_stubs(exe, files):
    """A target_clones function's address is a PLT stub of its ifunc resolver: its file."""
    text = subprocess.run(["objdump", "-d", "-j", ".plt", exe], check=True,
                          capture_output=True, text=True).stdout
    for line in text.splitlines():
        if "<*ABS*+0x" in line and line.endswith("@plt>:"):
            stub, resolver = line.split()[0], line.split("+0x")[1].split("@")[0]
            if int(resolver, 16) in files:
                files[int(stub, 16)] = files[int(resolver, 16)]
    return files


def read_trace(path):
    with open(path) as f:
        return [(kind, int(addr, 16)) for kind, addr in (line.split() for line in f)]


def folded(caller, callee, leaves):
    """The callee runs in its caller's stop: a header, or a kernel called by a kernel."""
    def leaf(path):
        return any(path.startswith(folder + "/") for folder in leaves)
    return callee.endswith(".h") or (leaf(caller) and leaf(callee))


def stops_of(events, files, leaves=()):
    """[(file, how, depth)], how = start | call | return; one entry per stop."""
    stack, stops = [], []

    def visit(path, how):  # depth: the files in the chain, not the frames
        if not stops or stops[-1][0] != path:
            depth = sum(1 for i, f in enumerate(stack) if i == 0 or stack[i - 1] != f)
            stops.append((path, how, depth))

    for kind, addr in events:
        path = files.get(addr, "?")
        if kind == "E":
            inline = stack and folded(stack[-1], path, leaves)
            stack.append(stack[-1] if inline else path)
            visit(stack[-1], "call" if len(stack) > 1 else "start")
        elif stack:
            stack.pop()
            if stack:
                visit(stack[-1], "return")
    return stops


def layer(path):
    parts = path.split("/")
    if parts[:2] == ["net", "base"]:
        return "net/base"
    return parts[0] if parts[0] in RANK else "?"


def rank(path):
    return RANK.get(layer(path), -1)


def measures(stops):
    m = Counter(stops=len(stops), files=len({s[0] for s in stops}))
    for (prev, _, _), (cur, how, _) in zip(stops, stops[1:]):
        m["returns"] += how == "return"
        m["crossings"] += layer(prev) != layer(cur)
        if how == "call" and rank(cur) > rank(prev):
            m["climbs"] += 1
        if how == "return" and layer(cur) == "dist" and rank(prev) < RANK["dist"]:
            m["round trips dist->%s->dist" % layer(prev)] += 1
    return m


def compress(tokens, longest=80):
    """Run-length code of blocks repeated back to back: items are tokens or (n, [items])."""
    out, i = [], 0
    while i < len(tokens):
        best_p, best_n = 1, 1
        for p in range(1, min(longest, (len(tokens) - i) // 2) + 1):
            n = 1
            while tokens[i + n * p:i + (n + 1) * p] == tokens[i:i + p]:
                n += 1
            if n > 1 and n * p > best_p * best_n:
                best_p, best_n = p, n
        if best_n > 1:
            out.append((best_n, compress(tokens[i:i + best_p], longest)))
        else:
            out.append(tokens[i])
        i += best_p * best_n
    return out


def once(items):
    """The compressed path with each repeated block once: a run of real stops."""
    out = []
    for item in items:
        out.extend(once(item[1]) if isinstance(item[0], int) else [item])
    return out


def listing(items, base_depth, indent="", lines=None):
    lines = [] if lines is None else lines
    for item in items:
        if isinstance(item[0], int):
            lines.append("%s%d x [" % (indent, item[0]))
            listing(item[1], base_depth, indent + "    ", lines)
            lines.append(indent + "]")
        else:
            path, how, depth = item
            mark = {"call": ">", "return": "<"}.get(how, " ")
            lines.append("%s%s %s%s" % (indent, mark, "  " * (depth - base_depth), path))
    return lines


COLUMNS = ("stops", "files", "returns", "climbs", "crossings", "round trips dist->data->dist",
           "round trips dist->net->dist", "round trips dist->net/base->dist")


def table(rows):
    head = ["%-28s" % ""] + ["%10s" % c for c in COLUMNS[:5]]
    head += ["   round trips dist->data / net / net/base->dist"]
    lines = ["".join(head)]
    for label, m in rows:
        cells = ["%-28s" % label] + ["%10d" % m[c] for c in COLUMNS[:5]]
        cells += ["   %d / %d / %d" % tuple(m[c] for c in COLUMNS[5:])]
        lines.append("".join(cells))
    return "\n".join(lines)


def path_report(exe, src, trace, title):
    events, files = read_trace(trace), symbols(exe, src)
    leaves = os.environ.get("STEP_PATH_LEAVES", "net/cpu net/cuda").split()
    stops = stops_of(events, files, leaves)
    if not stops:
        sys.exit("step_path.py: %s: empty trace (was the window reached?)" % trace)
    path = compress(stops)
    unfolded = once(compress(stops_of(events, files)))
    print("== %s (%d function calls)" % (title, sum(k == "E" for k, _ in events)))
    print(table([("path (repeated blocks once)", measures(once(path))),
                 ("every repetition", measures(stops)),
                 ("path, kernels unfolded", measures(unfolded))]))
    per_file = Counter(s[0] for s in once(path))
    print("stops per file on the path: " +
          ", ".join("%s %d" % kv for kv in sorted(per_file.items(), key=lambda kv: (-kv[1], kv[0]))))
    print("path ('>' call, '<' return, indent = files in the chain):")
    print("\n".join(listing(path, min(s[2] for s in stops), "  ")))
    print()


def count_lines(path):
    with open(path, errors="replace") as f:
        return sum(1 for _ in f)


def source_files(src, top):
    for dirpath, _, names in os.walk(os.path.join(src, top)):
        for name in names:
            if name.endswith((".c", ".h", ".cu")):
                yield os.path.relpath(os.path.join(dirpath, name), src)


def loc_report(src):
    """Lines (as wc -l counts them) per folder: "net/*" is net with its subfolders."""
    folders, sizes = Counter(), []
    for top in ("net", "data", "dist", "launch"):
        for rel in source_files(src, top):
            n = count_lines(os.path.join(src, rel))
            sizes.append((n, rel))
            folders[os.path.dirname(rel)] += n
            folders[top + "/*"] += n
    print("== lines of .c .h .cu files (wc -l) in %s" % src)
    print("  (F/*: F with its subfolders; F: the files directly in F)")
    for folder in sorted(folders, key=lambda f: (f.split("/")[0], not f.endswith("/*"), f)):
        if not (folder.endswith("/*") and folders[folder] == folders[folder[:-2]]):
            print("  %-12s %7d" % (folder, folders[folder]))
    print("  %-12s %7d" % ("total", sum(n for n, _ in sizes)))
    print("10 longest files:")
    for n, rel in sorted(sizes, key=lambda x: (-x[0], x[1]))[:10]:
        print("  %7d  %s" % (n, rel))
    print()


def main(argv):
    if len(argv) == 6 and argv[1] == "path":
        path_report(*argv[2:])
    elif len(argv) == 3 and argv[1] == "loc":
        loc_report(argv[2])
    else:
        sys.exit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main(sys.argv)
