"""Each kind opens untrusted bytes into an item or a classified problem, and describes what it sees."""

from __future__ import annotations

import io
import random

import numpy as np
import orjson
import polars as pl
import pytest
from PIL import Image, ImageFilter

from drift.demo import world as demo_world
from drift.features.kinds.base import InputProblem
from drift.features.kinds.document import open_document, page_size_class, producer_family
from drift.features.kinds.image import open_image
from drift.features.kinds.payload import PayloadFeaturizer, open_payload

IMAGE_LIMITS = {"max_bytes": 5_000_000, "max_pixels": 4_000_000, "crop_size": 32}
DOC_LIMITS = {"max_bytes": 5_000_000, "max_pages": 50, "text_chars": 2000, "page_size": 32}
PAYLOAD_LIMITS = {"max_bytes": 100_000, "max_depth": 8, "max_array": 100}


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kw)
    return buffer.getvalue()


def category(fn, data, limits) -> str:
    with pytest.raises(InputProblem) as caught:
        fn(data, limits)
    return caught.value.category


def gradient(mode="RGB", size=(80, 60)) -> Image.Image:
    arr = np.tile(np.linspace(0, 255, size[0], dtype=np.uint8), (size[1], 1))
    return Image.merge("RGB", [Image.fromarray(arr)] * 3).convert(mode)


@pytest.mark.parametrize(
    "mode, fmt", [("P", "PNG"), ("LA", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("L", "TIFF"), ("1", "BMP")]
)
def test_every_mode_becomes_rgb_crops(mode, fmt):
    opened = open_image(encode(gradient(mode), fmt), IMAGE_LIMITS)
    assert opened["pixels"].shape == (32, 32, 3) and opened["pixels"].dtype == np.uint8
    assert opened["descriptors"]["mode"] == mode


def test_sixteen_bit_images_are_scaled_not_clipped():
    arr = np.full((40, 40), 30000, dtype=np.uint16)
    img = Image.fromarray(arr)
    assert img.mode == "I;16"
    opened = open_image(encode(img, "PNG"), IMAGE_LIMITS)
    assert opened["descriptors"]["brightness_mean"] == pytest.approx(30000 / 65535 * 255, abs=1.5)


def test_transparent_areas_are_composited_on_white():
    img = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    opened = open_image(encode(img, "PNG"), IMAGE_LIMITS)
    assert opened["descriptors"]["brightness_mean"] == pytest.approx(255, abs=0.5)


def test_exif_orientation_is_recorded_then_applied():
    img = Image.new("RGB", (60, 30), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    exif[0x010F] = "Acme Phones"
    opened = open_image(encode(img, "JPEG", exif=exif), IMAGE_LIMITS)
    d = opened["descriptors"]
    assert (d["orientation"], d["camera_make"], d["exif_present"]) == ("6", "Acme Phones", 1.0)
    assert (d["width"], d["height"]) == (60, 30)  # as stored; the pixels are rotated for the encoder


def test_descriptors_see_darkness_and_blur():
    rng = random.Random(0)
    sharp = demo_world.receipt_photo(rng)
    d_sharp = open_image(encode(sharp, "JPEG"), IMAGE_LIMITS)["descriptors"]
    dark = Image.fromarray((np.asarray(sharp) * 0.15).astype(np.uint8))
    d_dark = open_image(encode(dark, "JPEG"), IMAGE_LIMITS)["descriptors"]
    d_blur = open_image(encode(sharp.filter(ImageFilter.GaussianBlur(5)), "JPEG"), IMAGE_LIMITS)["descriptors"]
    assert d_dark["brightness_mean"] < 0.4 * d_sharp["brightness_mean"]
    assert d_dark["brightness_p95"] < 0.4 * d_sharp["brightness_p95"]
    assert d_dark["dark_fraction"] > 0.5 > d_sharp["dark_fraction"]
    assert d_blur["blur_laplacian"] < 0.1 * d_sharp["blur_laplacian"]
    assert d_blur["edge_density"] < d_sharp["edge_density"]


def test_image_failures_are_classified(tmp_path):
    jpeg = encode(gradient(size=(200, 200)), "JPEG")
    assert category(open_image, jpeg[: len(jpeg) // 2], IMAGE_LIMITS) == "truncated"
    assert category(open_image, b"", IMAGE_LIMITS) == "empty"
    assert category(open_image, b"%!PS-Adobe-3.0 EPSF-3.0\n", IMAGE_LIMITS) == "unsupported"
    assert category(open_image, b"\x00\x01garbage" * 10, IMAGE_LIMITS) == "corrupt"
    big = encode(Image.new("L", (3000, 2000)), "PNG")
    assert category(open_image, big, IMAGE_LIMITS) == "bomb"  # 6 MP > 4 MP limit, under 2x: Pillow only warns
    assert category(open_image, encode(Image.new("L", (3000, 3000)), "PNG"), IMAGE_LIMITS) == "bomb"
    assert category(open_image, tmp_path / "missing.jpg", IMAGE_LIMITS) == "missing"
    (tmp_path / "huge.jpg").write_bytes(b"\xff" * 6_000_000)
    assert category(open_image, tmp_path / "huge.jpg", IMAGE_LIMITS) == "too_large"


@pytest.mark.parametrize("fmt", ["ICO", "TGA", "PPM", "PCX"])
def test_a_valid_image_in_a_format_we_do_not_allow_is_unsupported_not_corrupt(fmt):
    problem = category(open_image, encode(gradient(size=(32, 32)), fmt), IMAGE_LIMITS)
    assert problem == "unsupported"


def test_truncation_is_our_own_check_of_the_end_marker_not_the_libraries_words():
    noise = np.random.default_rng(0).integers(0, 256, (120, 120, 3), dtype=np.uint8)
    png = encode(Image.fromarray(noise), "PNG")
    assert category(open_image, png[: len(png) * 2 // 3], IMAGE_LIMITS) == "truncated"
    damaged = bytearray(png)
    damaged[len(png) // 2 : len(png) // 2 + 200] = bytes(range(200))  # whole file, broken inside
    assert category(open_image, bytes(damaged), IMAGE_LIMITS) == "corrupt"


def test_an_allowlist_name_this_pillow_lacks_is_our_bug_not_corrupt_images(monkeypatch):
    """Pillow 13 dropped the 'MPO' plug-in name: every image then failed inside Image.open."""
    from drift.features.kinds import image

    monkeypatch.setattr(image, "ALLOWED_FORMATS", (*image.ALLOWED_FORMATS, "NOSUCHFORMAT"))
    with pytest.raises(RuntimeError, match="no image plug-in named NOSUCHFORMAT"):
        open_image(encode(gradient(), "PNG"), IMAGE_LIMITS)


def test_born_digital_and_scanned_pdfs_differ_where_it_matters():
    rng = random.Random(0)
    digital = open_document(demo_world.invoice_pdf(rng, creator="Microsoft Word"), DOC_LIMITS)["descriptors"]
    scanned = open_document(demo_world.scanned_pdf(rng), DOC_LIMITS)["descriptors"]
    assert digital["text_layer"] == 1.0 and digital["text_chars_per_page"] > 200 and digital["image_area_share"] == 0
    assert scanned["text_layer"] == 0.0 and scanned["image_area_share"] > 0.9
    assert (digital["producer_family"], scanned["producer_family"]) == ("office", "scanner")
    assert digital["page_size"] == "a4"


def test_documents_give_their_text_and_first_page_to_the_encoders(tmp_path):
    rng = random.Random(0)
    digital = open_document(demo_world.invoice_pdf(rng), {**DOC_LIMITS, "text_chars": 300})
    assert digital["text"].startswith("INVOICE ") and len(digital["text"]) == 300 and "\n" not in digital["text"]
    page = digital["page"]
    assert page.shape == (32, 32, 3) and page.dtype == np.uint8
    # An A4 page letterboxed on white: white bands left and right, the page itself in the middle.
    assert page[:, 0].min() == 255 and page[:, -1].min() == 255 and page[:, 8:24].min() < 255
    scanned = open_document(demo_world.scanned_pdf(rng), DOC_LIMITS)
    assert scanned["text"] == "" and scanned["page"].mean() < page.mean()
    assert open_document(demo_world.invoice_pdf(rng), {**DOC_LIMITS, "page_size": 0})["page"] is None
    note = tmp_path / "note.txt"
    note.write_text("Pay   within\n30 days.")
    assert open_document(note, DOC_LIMITS) | {"descriptors": None} == {
        "descriptors": None,
        "text": "Pay within 30 days.",
        "page": None,
    }


def test_document_failures_are_classified(tmp_path):
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=io.BytesIO(demo_world.invoice_pdf(random.Random(1))))
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    assert category(open_document, buffer.getvalue(), DOC_LIMITS) == "encrypted"
    assert category(open_document, b"hello, not a pdf", DOC_LIMITS) == "not_pdf"
    assert category(open_document, b"%PDF-1.4\n" + bytes(range(256)) * 3, DOC_LIMITS) == "corrupt"
    many = demo_world.invoice_pdf(random.Random(2), pages=6)
    assert category(open_document, many, {**DOC_LIMITS, "max_pages": 5}) == "too_many_pages"


def test_plain_text_documents_are_described(tmp_path):
    path = tmp_path / "note.md"
    text = "# Terms\n\nPay within 30 days.\n"
    path.write_text(text)
    d = open_document(path, DOC_LIMITS)["descriptors"]
    assert d["producer_family"] == "plain_text" and d["text_chars_per_page"] == len(text)


@pytest.mark.parametrize(
    "family, producer",
    [
        ("scanner", "CamScanner"),
        ("latex", "pdfTeX-1.40.25"),
        ("office", "Microsoft® Word for Microsoft 365"),
        ("print", "Skia/PDF m120"),
        ("generator", "ReportLab PDF Library"),
        ("other", "Acme"),
        ("(none)", ""),
    ],
)
def test_producer_families(family, producer):
    assert producer_family(producer, "") == family


def test_page_size_classes():
    assert [page_size_class(*s) for s in [(595, 842), (842, 595), (612, 792), (226, 600), (300, 300)]] == [
        "a4",
        "a4",
        "letter",
        "receipt",
        "other",
    ]


def test_payload_observation_and_descriptors():
    doc = {"id": 1, "items": [{"price": 1.5}, {"price": 2}], "big": 2**60}
    opened = open_payload(orjson.dumps(doc), PAYLOAD_LIMITS)
    featurizer = PayloadFeaturizer()
    featurizer.add("doc", opened)
    tables = featurizer.finish().tables
    assert ("doc", "$.items[].price", "float", "") in tables["tags"].rows()
    assert tables["numbers"].filter(pl.col("path") == "$.items[].price").rows() == [("doc", "$.items[].price", 1.5)]  # the median
    assert opened["descriptors"] == {
        "bytes": len(orjson.dumps(doc)),
        "node_count": 8.0,
        "depth": 3.0,
        "top_type": "object",
        "had_bom": 0.0,
        "big_ints": 1.0,
    }


def test_payload_failures_and_notes():
    assert category(open_payload, b"{not json", PAYLOAD_LIMITS) == "invalid_json"
    assert category(open_payload, b"[NaN]", PAYLOAD_LIMITS) == "invalid_json"
    assert category(open_payload, b"  ", PAYLOAD_LIMITS) == "empty"
    assert category(open_payload, b"[" * 20 + b"]" * 20, PAYLOAD_LIMITS) == "too_deep"
    assert category(open_payload, orjson.dumps(list(range(101))), PAYLOAD_LIMITS) == "too_large"
    assert category(open_payload, b'"\xff"', PAYLOAD_LIMITS) == "bad_encoding"
    with_bom = open_payload(b"\xef\xbb\xbf{}", PAYLOAD_LIMITS)
    assert with_bom["descriptors"]["had_bom"] == 1.0


def test_pdf_structure_descriptors_from_real_files():
    from .conftest import CORPUS

    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not beside this clone")
    samples = CORPUS / "pdf" / "sample-files"
    forms = open_document(samples / "010-pdflatex-forms_pdflatex-forms.pdf", DOC_LIMITS)["descriptors"]
    attached = open_document(samples / "025-attachment_with-attachment.pdf", DOC_LIMITS)["descriptors"]
    assert forms["form_fields"] == 3 and attached["attachments"] == 1


def test_scans_have_image_resolution_and_born_digital_files_have_none():
    rng = random.Random(3)
    scanned = open_document(demo_world.scanned_pdf(rng), DOC_LIMITS)["descriptors"]
    digital = open_document(demo_world.invoice_pdf(rng), DOC_LIMITS)["descriptors"]
    assert 60 < scanned["image_dpi"] < 90  # the demo saves its scans at 75 dpi
    assert digital["image_dpi"] != digital["image_dpi"]  # NaN: no images
    assert digital["invisible_text_share"] == 0.0 and digital["form_fields"] == 0.0


def test_invisible_ocr_text_over_a_scan_is_measured():
    from fpdf import FPDF
    from fpdf.enums import TextMode

    page = demo_world.receipt_page(random.Random(4), 620, 877).convert("L")
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.image(page, x=0, y=0, w=210, h=297)
    pdf.set_font("helvetica", size=11)
    pdf.text_mode = TextMode.INVISIBLE
    for line in range(5):
        pdf.text(20, 30 + 10 * line, "TOTAL 12.50 EUR")
    d = open_document(bytes(pdf.output()), DOC_LIMITS)["descriptors"]
    assert d["invisible_text_share"] == 1.0
    assert d["text_layer"] == 1.0 and d["image_area_share"] > 0.9
