"""The plan of one run: for every source, which column is what and how its image is laid
out; for the output, its image shape, channels and their kinds, its 1-D columns and the
model's scalars. Everything is decided, and every source checked, before the output is
created."""
import numpy as np

from .columns import ROLES, map_roles, pick_extras, same_extras
from .decode import OutColumn, ReadSpec
from .errors import Bad
from .layout import ImageSpec, pick_layout, shape_str
from .meta import default_channels, default_kinds, parse_kinds, scalars_and_scales


class Plan:
    pass


def attr_strings(f, name):
    v = f.attrs.get(name)
    if v is None:
        return None
    return [s.decode() if isinstance(s, bytes) else str(s) for s in np.atleast_1d(v)]


def plan_run(a, sources, old, dtype):
    p = Plan()
    p.roles, p.extras = [], []
    for i, s in enumerate(sources):
        roles = map_roles(s, a.colmap, a.label_value is not None or a.label in s.columns)
        if i and a.extra == "all":
            extras, skipped = same_extras(s, roles, p.extras[0][0], sources[0])
        else:
            extras, skipped = pick_extras(s, roles, a.extra)
        p.roles.append(roles)
        p.extras.append((extras, skipped))
    first_roles = p.roles[0]
    names = [r for r in ROLES[1:] if r in first_roles] + p.extras[0][0]
    for s, roles, (extras, _) in zip(sources, p.roles, p.extras):
        mine = [r for r in ROLES[1:] if r in roles] + extras
        if mine != names:
            raise Bad("%s: gives the columns %s, but %s gives %s; every file must give the same (see --extra, "
                      "--column)" % (s.path, ", ".join(mine), sources[0].path, ", ".join(names)))
        s.use(roles["X_jet"], [roles.get(n, n) for n in names])
    p.image = image_specs(a, sources, p.roles, old, dtype)
    p.chw = p.image[0].chw
    channels_and_kinds(a, p, old)
    columns_and_scalars(a, p, sources, names, old)
    p.specs = [ReadSpec(spec, roles["X_jet"], [roles.get(o.name, o.name) for o in p.outs if o.constant is None],
                        p.outs) for spec, roles in zip(p.image, p.roles)]
    return p


def image_specs(a, sources, roles, old, dtype):
    """the ImageSpec of every source (one C x H x W for all, and the appended file's)"""
    specs, first = [], None
    for s, r in zip(sources, roles):
        col = r["X_jet"]
        dims = s.first_image_dims(col)
        if dims is None:
            specs.append(None)
            continue
        spec = ImageSpec(dims, pick_layout(dims, a.layout, s.path, col), dtype)
        spec.check_channels(s.path, col)
        if old and spec.chw != old["chw"]:
            raise Bad("%s: %s is %s, but %s holds images of %s (C x H x W)"
                      % (s.path, col, spec.words(), a.out, shape_str(old["chw"])))
        if first is None:
            first = (spec, s)
        elif spec.chw != first[0].chw:
            raise Bad("%s: %s is %s, but %s has images of %s (C x H x W); one output file holds one "
                      "image shape" % (s.path, col, spec.words(), first[1].path, shape_str(first[0].chw)))
        specs.append(spec)
    if first is None:
        raise Bad("%s: no jets: the input files hold no rows" % ", ".join(s.path for s in sources))
    return [sp or first[0] for sp in specs]


def channels_and_kinds(a, p, old):
    C = p.chw[0]
    if old:
        p.channels = old["channels"] or ["ch%d" % i for i in range(C)]
        if a.channels and a.channels != p.channels:
            raise Bad("%s: its channels are %s; --channels gives %s" % (a.out, ",".join(p.channels), ",".join(a.channels)))
        p.kinds = old["kinds"]
        if a.channel_kinds and parse_kinds(a.channel_kinds, C) != (p.kinds or ["energy"] * C):
            raise Bad("%s: its channel kinds are %s; --channel-kinds gives %s"
                      % (a.out, ",".join(p.kinds or ["energy"] * C), a.channel_kinds))
        p.check_kinds = p.kinds or ["energy"] * C
        return
    if a.channels:
        if len(a.channels) != C:
            raise Bad("--channels names %d channels but the images have %d" % (len(a.channels), C))
        p.channels = a.channels
    else:
        p.channels = default_channels(C)
    p.kinds = parse_kinds(a.channel_kinds, C) if a.channel_kinds else default_kinds(p.channels)
    p.check_kinds = p.kinds


def out_dtype(sources, roles, name):
    types = []
    for s, r in zip(sources, roles):
        t = s.columns[r.get(name, name)].dtype
        types.append(np.dtype(np.uint8) if t == np.bool_ else t)
    return np.result_type(*types)


def columns_and_scalars(a, p, sources, names, old):
    """the output's 1-D columns (m, pt, ieta, iphi where given, then the copied ones) and
    the model's scalars with their scales"""
    stamped = stamped_label(a, sources, names, old)
    if old:
        if sorted(names + stamped) != sorted(old["columns"]):
            raise Bad("%s: holds the columns %s; the files give %s" % (a.out, ", ".join(sorted(old["columns"])),
                                                                     ", ".join(sorted(names))))
        p.scalars, p.scales = old["scalars"], old["scalar_scale"]
        if a.scalars is not None and a.scalars != (p.scalars if p.scalars is not None else ["iphi", "ieta"]):
            raise Bad("%s: its scalars are %s; --scalars gives %s"
                      % (a.out, ",".join(p.scalars or []) or "none", ",".join(a.scalars) or "none"))
    else:
        p.scalars, p.scales = scalars_and_scales(a.scalars, a.scalar_scale, [n for n in names if n != "m"])
    inputs = set(p.scalars if p.scalars is not None else ["iphi", "ieta"])
    p.outs = []
    for n in names:
        role = n if n in ROLES else None
        checked = role is not None or n in inputs
        dtype = np.float32 if checked else (old["columns"][n] if old else out_dtype(sources, p.roles, n))
        divide = 1000.0 if a.mass_unit == "MeV" and n in ("m", "pt") else 1.0
        p.outs.append(OutColumn(n, role, dtype, checked, divide, "GeV" if n in ("m", "pt") else None))
    for n in stamped:
        p.outs.append(OutColumn(n, None, old["columns"][n] if old else np.uint8, False, constant=a.label_value))


def stamped_label(a, sources, names, old):
    """[the label column --label-value stamps] or []: refused where a source gives a column
    of that name (its own labels) or where an appended file has no such column"""
    if a.label_value is None:
        return []
    if a.label in names:
        src = [s.path for s in sources if a.label in s.columns][:1] or [sources[0].path]
        raise Bad("%s: has a column '%s' already (its own labels?); --label-value %d would stamp over it: leave it "
                  "out with --extra, or stamp another column (--label NAME)" % (src[0], a.label, a.label_value))
    if old and a.label not in old["columns"]:
        raise Bad("%s: has no label column '%s' for the appended rows' labels" % (a.out, a.label))
    return [a.label]
