"""Which source column is the image, the mass, pt, ieta and iphi (the E2E producers' names
by default, --column for the rest), and which other per-jet columns are copied."""
from .errors import Bad

ROLES = ("X_jet", "m", "pt", "ieta", "iphi")  # also the output's dataset names
KNOWN = {
    "X_jet": ("X_jet", "X_jets", "X"),  # X: the electron/photon files (N, 32, 32, 2) channel-last
    "m": ("m", "m0", "am", "jetM", "genM"),
    "pt": ("pt", "apt", "jetPt"),
    "ieta": ("ieta",),
    "iphi": ("iphi",),
}
REQUIRED = ("X_jet", "m", "pt")
CLASSIFIER_REQUIRED = ("X_jet",)  # a classifier's file (it has labels) needs no mass nor pT
WORDS = {"X_jet": "the jet images", "m": "the jet mass", "pt": "the jet pT", "ieta": "the jet's eta index",
         "iphi": "the jet's phi index"}


class Column:
    """A source column: kind 'image' (3 axes a jet), 'scalar' (one number a jet) or
    'other'; dtype (numpy) of its values; desc for messages."""

    def __init__(self, name, kind, dtype, desc, rows=None):
        self.name, self.kind, self.dtype, self.desc = name, kind, dtype, desc
        self.rows = rows  # an HDF5 dataset's length (a parquet column has the file's rows)


def listing(source):
    return ", ".join("%s (%s)" % (c.name, c.desc) for c in source.columns.values()) or "no columns"


def map_roles(source, overrides, labelled=False):
    """{role: source column} for the roles the source has; refuses a missing required
    role, an ambiguous one (two known names present) and a column of the wrong kind,
    each with the columns the source has. labelled: the rows have class labels (a
    classifier's file), which need only the image (the E2E electron/photon files hold X
    and y, no mass, no pT)"""
    roles, cols = {}, source.columns
    required = CLASSIFIER_REQUIRED if labelled else REQUIRED
    for role in ROLES:
        if role in overrides:
            col = overrides[role]
            if col not in cols:
                raise Bad("%s: no column '%s' (given for %s by --column); it has: %s"
                          % (source.path, col, role, listing(source)))
        else:
            cands = [c for c in KNOWN[role] if c in cols and c not in overrides.values()]
            if len(cands) > 1:
                raise Bad("%s: ambiguous: %s could be %s (%s); it has: %s; pass --column %s=NAME to choose"
                          % (source.path, " and ".join(cands), WORDS[role], role, listing(source), role))
            col = cands[0] if cands else None
        if col is None:
            if role in required:
                raise Bad("%s: no column for %s (%s: one of %s); it has: %s; pass --column %s=NAME%s"
                          % (source.path, WORDS[role], role, ", ".join(KNOWN[role]), listing(source), role,
                             "" if role == "X_jet" else ", or give a classifier's labels (a column --label "
                             "names, default y, or --label-value 0|1): a classifier needs no %s" % role))
            continue
        if col in roles.values():
            raise Bad("%s: column '%s' is given for two roles" % (source.path, col))
        want = "image" if role == "X_jet" else "scalar"
        if cols[col].kind != want:
            raise Bad("%s: column '%s'%s has type %s; expected %s" % (
                source.path, col, "" if col == role else " (for %s)" % role, cols[col].desc,
                "3 axes of numbers a jet: C x H x W (channel-first) or H x W x C (channel-last), e.g. a "
                "3-level nested list" if want == "image" else "one number a jet (float or integer)"))
        roles[role] = col
    return roles


def pick_extras(source, roles, extra):
    """(columns copied as they are, [(column, why not copied)]) for --extra all | none | A,B"""
    used = set(roles.values())
    if extra == "none":
        return [], []
    if extra != "all":
        for c in extra:
            if c not in source.columns:
                raise Bad("%s: no column '%s' (given by --extra); it has: %s" % (source.path, c, listing(source)))
            if c in used:
                raise Bad("%s: --extra %s: that column is already %s" % (
                    source.path, c, [r for r, v in roles.items() if v == c][0]))
            if c in ROLES:
                raise Bad("%s: --extra %s: the output's dataset of that name holds %s" % (source.path, c, c))
            if source.columns[c].kind != "scalar":
                raise Bad("%s: --extra %s: has type %s; only one number a jet can be copied"
                          % (source.path, c, source.columns[c].desc))
        return list(extra), []
    chosen, skipped = [], []
    for c in source.columns.values():
        if c.name in used:
            continue
        if c.kind != "scalar":
            skipped.append((c.name, c.desc))
        elif c.rows is not None and c.rows != source.columns[roles["X_jet"]].rows:
            skipped.append((c.name, "%d rows, not one a jet" % c.rows))
        elif c.name in ROLES:
            skipped.append((c.name, "the dataset %s holds %s" % (c.name, roles[c.name])))
        else:
            chosen.append(c.name)
    return chosen, skipped


def same_extras(source, roles, extras, first):
    """the columns the first file's --extra all copies, which a later file must have too"""
    for c in extras:
        col = source.columns.get(c)
        if col is None or col.kind != "scalar" or c in roles.values():
            raise Bad("%s: %s column '%s' like %s (--extra all, the default, copies it); pass --extra to choose "
                      "the columns to copy, or --extra none" % (source.path, "has no" if col is None else
                                                               "has no usable", c, first.path))
    skipped = [(c.name, "not in %s" % first.path) for c in source.columns.values()
               if c.name not in extras and c.name not in roles.values()]
    return list(extras), skipped
