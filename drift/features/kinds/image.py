"""Images: decode untrusted bytes safely, describe them for people, embed them for the tests.

Descriptors are computed on the image after EXIF orientation, converted to 8-bit RGB, at a fixed
working size (longest side 512, box filter) so that resolution changes do not masquerade as blur
changes; the encoder's crop is cut from the same working image. Formulas (g is the grey level in
0..255, ITU-R 601 luma):

    brightness_mean, brightness_p05, brightness_p95   mean of g, and its percentiles to the level
    contrast           standard deviation of g
    saturation         mean HSV saturation, 0..1
    entropy            Shannon entropy (bits) of the 256-bin histogram of g
    blur_laplacian     variance of the 4-neighbour Laplacian of g (low = blurry)
    edge_density       share of pixels whose gradient magnitude exceeds 32
    dark_fraction      share of pixels with g < 32;  overexposed_fraction: g > 240
    white_background   share of pixels with every channel > 220 and saturation < 0.1 (26/255)
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..embed.spool import EmbeddingSpool
from .base import DescriptorFeaturizer, FeatureSet, InputProblem, input_bytes

# Pillow plug-in names. Multi-picture JPEGs from cameras (format "MPO") open through the JPEG
# plug-in; "MPO" itself is no opener's name (Image.OPEN has none), and listing it made every image
# that no earlier plug-in took fail with a KeyError inside Image.open, which read as "corrupt".
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP")
WORK_SIDE = 512
_EXIF_ORIENTATION, _EXIF_MAKE = 0x0112, 0x010F

# Magic numbers of formats we refuse on purpose, so they are 'unsupported' rather than 'corrupt'.
_REFUSED_MAGIC = {
    b"%!PS": "PostScript/EPS",
    b"\xc5\xd0\xd3\xc6": "EPS",
    b"%PDF": "PDF",
    b"<svg": "SVG",
    b"<?xm": "XML/SVG",
}


def _check_allowlist(registry) -> None:
    """Every allowed format must be a plug-in this Pillow has: a name it dropped (Pillow 13 and
    "MPO") would otherwise make every image fail inside Image.open, and be blamed on the images."""
    missing = [name for name in ALLOWED_FORMATS if name not in registry]
    if missing:
        raise RuntimeError(f"Pillow has no image plug-in named {', '.join(missing)}; update ALLOWED_FORMATS for this Pillow")


def _ends_early(data: bytes) -> bool:
    """Does the file stop before its format's end marker? Our own check, for 'truncated'."""
    tail = data.rstrip(b"\x00")[-16:]
    if data.startswith(b"\xff\xd8"):
        return not tail.endswith(b"\xff\xd9")
    if data.startswith(b"\x89PNG"):
        return b"IEND" not in tail
    if data.startswith(b"GIF8"):
        return not tail.endswith(b";")
    return False


def _identify_refused(data: bytes) -> str | None:
    """The format of a real image in a format we do not allow (ICO, TGA, PSD...), by parsing its
    header with every Pillow plug-in; no pixels are decoded. None when nothing recognises it."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.format
    except Exception:  # noqa: BLE001 - untrusted bytes: any failure to parse a header means "not an image"
        return None


def _refused_format(data: bytes) -> str | None:
    for magic, name in _REFUSED_MAGIC.items():
        if data.startswith(magic):
            return name
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "HEIF/AVIF"
    return None


def _to_rgb(img):
    """Convert any Pillow mode to 8-bit RGB, compositing transparency onto white."""
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = (0.0, 65535.0) if mode.startswith("I;16") else (float(arr.min()), float(arr.max()))
        scaled = np.clip((arr - lo) / max(hi - lo, 1e-9) * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, "L").convert("RGB")
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    if mode != "RGB":
        return img.convert("RGB")
    return img


def _center_crop(img, size: int):
    from PIL import Image

    w, h = img.size
    scale = size / min(w, h)
    resized = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BICUBIC)
    w, h = resized.size
    left, top = (w - size) // 2, (h - size) // 2
    return resized.crop((left, top, left + size, top + size))


def working_image(rgb):
    """The image every descriptor and the encoder crop are computed from: longest side WORK_SIDE.

    A box filter is an exact area average when shrinking, and several times cheaper than bicubic.
    """
    from PIL import Image

    scale = WORK_SIDE / max(rgb.size)
    if scale >= 1:
        return rgb
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return rgb.resize(size, Image.Resampling.BOX)


def _percentile(hist_cdf: np.ndarray, q: float) -> float:
    """The q-quantile of the grey levels, to the level, from their cumulative histogram."""
    return float(np.searchsorted(hist_cdf, q * hist_cdf[-1]))


def describe_pixels(work) -> dict[str, float]:
    """Descriptors of the RGB working image (see the module docstring)."""
    grey8 = np.asarray(work.convert("L"))  # Pillow's L is ITU-R 601 luma, computed in C
    grey = grey8.astype(np.float32)
    hist = np.bincount(grey8.ravel(), minlength=256).astype(np.float64)
    cdf = np.cumsum(hist)
    p = hist[hist > 0] / hist.sum()
    lap = grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1]
    gx = grey[1:-1, 2:] - grey[1:-1, :-2]
    gy = grey[2:, 1:-1] - grey[:-2, 1:-1]
    saturation = np.asarray(work.convert("HSV"))[..., 1]
    n = grey8.size
    return {
        "brightness_mean": float(grey.mean()),
        "brightness_p05": _percentile(cdf, 0.05),
        "brightness_p95": _percentile(cdf, 0.95),
        "contrast": float(grey.std()),
        "saturation": float(saturation.mean()) / 255.0,
        "entropy": float(-(p * np.log2(p)).sum()),
        "blur_laplacian": float(lap.var()) if lap.size else 0.0,
        "edge_density": float((gx * gx + gy * gy > 32 * 32).mean()) if gx.size else 0.0,
        "dark_fraction": float(cdf[31] / n),
        "overexposed_fraction": float(1.0 - cdf[240] / n),
        "white_background": float(((np.asarray(work) > 220).all(axis=-1) & (saturation < 26)).mean()),
    }


def decode_image(data: bytes, limits: dict[str, Any]):
    """Open and fully decode untrusted bytes; return (RGB image, facts about the file)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    refused = _refused_format(data[:16])
    if refused:
        raise InputProblem("unsupported", f"{refused} is not an allowed image format")
    Image.init()
    _check_allowlist(Image.OPEN)
    Image.MAX_IMAGE_PIXELS = limits["max_pixels"]
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; we refuse both.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            fmt = img.format or "unknown"
            width, height = img.size
            mode = img.mode
            exif = img.getexif()
            orientation = int(exif.get(_EXIF_ORIENTATION, 1) or 1) if exif else 1
            make = str(exif.get(_EXIF_MAKE, "")).strip("\x00 ").strip() if exif else ""
            if fmt == "JPEG":
                # Decode at reduced scale: the descriptors and the encoder never need more.
                img.draft("RGB", (WORK_SIDE, WORK_SIDE))
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InputProblem("bomb", str(exc)) from None
        except UnidentifiedImageError:
            other = _identify_refused(data)
            if other:
                raise InputProblem("unsupported", f"{other} is not an allowed image format") from None
            raise InputProblem("corrupt", "not a recognisable image in an allowed format") from None
        except (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, struct.error, EOFError) as exc:
            # What Pillow raises on bytes it cannot decode; which of them is ours to say by our own check.
            category = "truncated" if _ends_early(data) else "corrupt"
            raise InputProblem(category, f"{type(exc).__name__}: {str(exc)[:300]}") from None
    if width <= 0 or height <= 0:
        raise InputProblem("corrupt", f"image has no pixels ({width}x{height})")
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a bad orientation tag must not lose the image
        pass
    rgb = _to_rgb(img)
    facts = {
        "format": fmt,
        "mode": mode,
        "width": width,
        "height": height,
        "exif_present": bool(exif),
        "orientation": orientation,
        "camera_make": make or "(none)",
    }
    return rgb, facts


def open_image(target, limits: dict[str, Any]) -> dict[str, Any]:
    """Worker side: bytes or path -> descriptors and the encoder's input crop (uint8 HxWx3)."""
    data = input_bytes(target, limits["max_bytes"])
    if not data:
        raise InputProblem("empty", "the file is empty")
    rgb, facts = decode_image(data, limits)
    work = working_image(rgb)
    width, height = facts["width"], facts["height"]
    descriptors: dict[str, Any] = {
        "width": float(width),
        "height": float(height),
        "megapixels": width * height / 1e6,
        "aspect_ratio": width / height,
        "file_bytes": float(len(data)),
        "bytes_per_pixel": len(data) / (width * height),
        "exif_present": float(facts["exif_present"]),
        "format": facts["format"],
        "mode": facts["mode"],
        "orientation": str(facts["orientation"]),
        "camera_make": facts["camera_make"],
        **describe_pixels(work),
    }
    crop = np.asarray(_center_crop(work, limits["crop_size"]), dtype=np.uint8)
    return {"descriptors": descriptors, "pixels": crop}


class ImageFeaturizer(DescriptorFeaturizer):
    """Collects descriptors and embeds the crops in batches while workers keep decoding."""

    def __init__(self, encoder, batch_size: int, spool: Path):
        super().__init__()
        self.spool = EmbeddingSpool(lambda crops: encoder.encode_pixels(np.stack(crops)), encoder.dim, batch_size, spool)

    def add(self, input_id: str, opened: dict[str, Any]) -> None:
        super().add(input_id, opened)
        self.spool.add(input_id, opened["pixels"])

    def finish(self) -> FeatureSet:
        return FeatureSet(
            ids=list(self.ids), descriptors=self.descriptor_frame(), embeddings={"clip": self.spool.matrix(self.ids)}
        )


class ImageKind:
    name = "image"
    # what each item gets (a yes/no is a 0/1 number); tests/test_conformance.py holds the featurizer to it
    descriptors = {
        "aspect_ratio": "number",
        "blur_laplacian": "number",
        "brightness_mean": "number",
        "brightness_p05": "number",
        "brightness_p95": "number",
        "bytes_per_pixel": "number",
        "camera_make": "category",
        "contrast": "number",
        "dark_fraction": "number",
        "edge_density": "number",
        "entropy": "number",
        "exif_present": "number",
        "file_bytes": "number",
        "format": "category",
        "height": "number",
        "megapixels": "number",
        "mode": "category",
        "orientation": "category",
        "overexposed_fraction": "number",
        "saturation": "number",
        "white_background": "number",
        "width": "number",
    }
    tables = {}
    structured = False
    open_input = staticmethod(open_image)

    def limits(self, context) -> dict[str, Any]:
        return {
            "max_bytes": context.config.image.max_bytes,
            "max_pixels": context.config.image.max_pixels,
            "crop_size": context.crop_size(),
        }

    def timeout(self, context) -> float:
        return context.config.image.timeout_s

    def embeddings(self, config) -> dict[str, str]:
        return {"clip": "clip"}

    def featurizer(self, context, source: str) -> ImageFeaturizer:
        return ImageFeaturizer(
            context.image_encoder(), context.config.image.batch_size, context.spool_path(self.name, source, "clip")
        )
