"""Channel-first or channel-last: how a source's image axes map to C x H x W."""
from .errors import Bad

LAYOUT_WORDS = {"chw": "channel-first, C x H x W", "hwc": "channel-last, H x W x C"}
MAX_CHANNELS = 64  # data/format/jetfile.h JET_MAX_CHANNELS


def shape_str(d):
    return " x ".join(str(v) for v in d)


def pick_layout(dims, layout, path, column):
    """'chw' or 'hwc' for an image of per-jet dims (a, b, c): the one whose image is
    square; refused when both or neither are (a cube like 125 x 125 x 125 or 3 x 3 x 3,
    or a non-square image), unless --layout says"""
    a, b, c = dims
    if layout != "auto":
        return layout
    if b == c and a != b:
        return "chw"
    if a == b and c != a:
        return "hwc"
    if a == b == c:
        why = ("its channel axis is ambiguous: all three lengths are equal, so it could be %d channels "
               "of %d x %d first or last" % (a, b, c))
    else:
        why = "neither layout gives a square image (channel-first needs the last two lengths equal, " \
              "channel-last the first two)"
    raise Bad("%s: cannot tell the layout of %s from its shape %s: %s; pass --layout chw or --layout hwc"
              % (path, column, shape_str(dims), why))


class ImageSpec:
    """A source's image: its per-jet dims in source order, layout, and the stored dtype."""

    def __init__(self, dims, layout, dtype):
        self.dims = tuple(int(v) for v in dims)
        self.layout = layout
        self.dtype = dtype  # "float32" | "float16"
        a, b, c = self.dims
        self.chw = (a, b, c) if layout == "chw" else (c, a, b)

    def words(self):
        if self.layout == "chw":
            return "%s (%s)" % (shape_str(self.dims), LAYOUT_WORDS[self.layout])
        return "%s (%s; C x H x W = %s)" % (shape_str(self.dims), LAYOUT_WORDS[self.layout], shape_str(self.chw))

    def check_channels(self, path, column):
        C = self.chw[0]
        if not 1 <= C <= MAX_CHANNELS:
            raise Bad("%s: %s %s has %d channels; the format allows 1 to %d"
                      % (path, column, self.words(), C, MAX_CHANNELS))
