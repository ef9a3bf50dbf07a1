"""What the output records about its channels and per-jet scalars: channel names and kinds
(energy-like or signed), the model's scalar inputs and their scales."""
import re

from .errors import Bad

TOP_GUN_CHANNELS = ["track_pt", "dz", "d0", "ecal", "hcal", "bpix1", "bpix2", "bpix3"]
E2E3_CHANNELS = ["track_pt", "ecal", "hcal"]
KINDS = ("energy", "signed")
# impact parameters: dz, d0 (and dxy), alone or with a suffix such as dz_sig
SIGNED_NAME = re.compile(r"(dz|d0|dxy)($|[^a-z])")
DEFAULT_SCALARS = ("iphi", "ieta")  # the E2E model's order
SCALAR_SCALES = {"iphi": 360.0, "ieta": 170.0, "pt": 1000.0}


def default_channels(C):
    if C == 8:
        return list(TOP_GUN_CHANNELS)
    if C == 3:
        return list(E2E3_CHANNELS)
    return ["ch%d" % i for i in range(C)]


def default_kinds(names):
    return ["signed" if SIGNED_NAME.match(n.lower()) else "energy" for n in names]


def parse_kinds(text, C):
    kinds = [k.strip() for k in text.split(",")]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise Bad("--channel-kinds: '%s' is not a channel kind (energy or signed)" % bad[0])
    if len(kinds) != C:
        raise Bad("--channel-kinds gives %d kinds but the images have %d channels" % (len(kinds), C))
    return kinds


def scalars_and_scales(asked, scales_given, available):
    """(names, scales): --scalars (None: iphi and ieta where the file has them; [] none)
    and their scales (--scalar-scale NAME=X, else iphi 360, ieta 170, pt 1000 GeV)"""
    names = [s for s in DEFAULT_SCALARS if s in available] if asked is None else list(asked)
    for s in names:
        if s == "m":
            raise Bad("--scalars: m is the target (the mass the model regresses), not an input")
        if s not in available:
            raise Bad("--scalars: no per-jet column '%s' in the output (it will hold: %s)"
                      % (s, ", ".join(sorted(available)) or "none"))
        if names.count(s) > 1:
            raise Bad("--scalars: '%s' is named twice" % s)
    for s in scales_given:
        if s not in names:
            raise Bad("--scalar-scale %s: not one of the scalars (%s)" % (s, ", ".join(names) or "none"))
    scales = []
    for s in names:
        v = scales_given.get(s, SCALAR_SCALES.get(s))
        if v is None:
            raise Bad("--scalars %s: no default scale for it; the model's input is value / scale: pass "
                      "--scalar-scale %s=X" % (s, s))
        scales.append(float(v))
    return names, scales
