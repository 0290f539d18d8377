"""Documents: PDFs (and plain text) opened in a worker and described.

pypdfium2 does the parsing: it is fast, permissively licensed, and reads damaged files the way
viewers do. Descriptors look at the first `SCAN_PAGES` pages, which is where a template or a
scanner change shows, and keeps the cost of a 500-page contract bounded.

    pages, file_bytes, pdf_version      as the file says
    text_chars_per_page                 characters of extracted text per scanned page
    text_layer                          1 when any scanned page has text
    image_area_share                    share of page area covered by image objects (scans: ~1)
    producer_family                     scanner, office, latex, generator, print, other, (none)
    page_size                           a4, letter, receipt, other (of the first page)
    rotated, mixed_page_sizes           1 / 0
    risky_keys                          count of /JavaScript /OpenAction /Launch /EmbeddedFile /XFA
    image_dpi                           median effective resolution of the images (pixels per inch
                                        as placed on the page); NaN without images
    invisible_text_share                share of text objects drawn invisibly (OCR layers on scans)
    form_fields                         form-field widgets on the scanned pages (pypdfium2)
    attachments                         embedded files (pypdfium2)

Two embeddings, so that a new template or a change of content shows even when no descriptor moves:

    text    the first `[document] text_chars` characters of the scanned pages' text (whitespace
            collapsed) through the sentence encoder (all-MiniLM-L6-v2). A scan without a text
            layer embeds the empty text, so a wave of scans moves this embedding too.
    page    the first page rendered whole, letterboxed on white to the image encoder's input size,
            through the job's [image] encoder. Plain-text files have no page: their row is left
            out of the page tests.
"""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from ..embed.spool import EmbeddingSpool
from .base import DescriptorFeaturizer, FeatureSet, InputProblem, input_bytes

SCAN_PAGES = 5
TEXT_SUFFIXES = (".txt", ".md", ".markdown")
RISKY_KEYS = (b"/JavaScript", b"/OpenAction", b"/Launch", b"/EmbeddedFile", b"/XFA")

_FAMILIES = [
    ("scanner", r"scan|camscanner|genius|epson|canon|xerox|ricoh|kyocera|fujitsu|naps2|hp digital sending"),
    ("latex", r"tex|dvipdf"),
    ("office", r"microsoft|word|excel|powerpoint|libreoffice|openoffice|google docs|pages|keynote|wps"),
    ("print", r"print|quartz|ghostscript|distiller|cairo|skia|chrom"),
    ("generator", r"reportlab|fpdf|itext|pdfkit|wkhtmltopdf|tcpdf|dompdf|pdfsharp|prince|weasyprint|pypdf"),
]


def producer_family(producer: str, creator: str) -> str:
    text = f"{producer} {creator}".lower().strip()
    if not text:
        return "(none)"
    for family, pattern in _FAMILIES:
        if re.search(pattern, text):
            return family
    return "other"


def page_size_class(width_pt: float, height_pt: float) -> str:
    short, long = sorted((width_pt, height_pt))
    if abs(short - 595) <= 18 and abs(long - 842) <= 25:
        return "a4"
    if abs(short - 612) <= 18 and abs(long - 792) <= 24:
        return "letter"
    if short <= 300 and long >= 1.5 * short:
        return "receipt"
    return "other"


def _embeddable(text: str, limits: dict[str, Any]) -> str:
    return " ".join(text.split())[: limits["text_chars"]]


def render_first_page(page, size: int) -> np.ndarray | None:
    """The whole page, letterboxed on white into a size x size square (uint8 HxWx3).

    The whole page and not a centre crop: a template shows in its header and footer.
    """
    from PIL import Image

    width, height = page.get_size()
    if not (width > 1 and height > 1):
        return None
    rendered = page.render(scale=size / max(width, height)).to_pil().convert("RGB")
    square = Image.new("RGB", (size, size), (255, 255, 255))
    square.paste(rendered, ((size - rendered.width) // 2, (size - rendered.height) // 2))
    return np.asarray(square, dtype=np.uint8)


def _describe_text(data: bytes) -> tuple[dict[str, Any], str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputProblem("corrupt", "plain-text document is not valid UTF-8") from None
    return {
        "pages": 1.0,
        "file_bytes": float(len(data)),
        "text_chars_per_page": float(len(text)),
        "text_layer": 1.0 if text.strip() else 0.0,
        "image_area_share": 0.0,
        "producer_family": "plain_text",
        "page_size": "other",
        "pdf_version": "(text)",
        "rotated": 0.0,
        "mixed_page_sizes": 0.0,
        "risky_keys": 0.0,
        "image_dpi": math.nan,
        "invisible_text_share": 0.0,
        "form_fields": 0.0,
        "attachments": 0.0,
    }, text


def _page_objects(page, page_area: float) -> tuple[float, list[float], int, int]:
    """Image area share, effective image resolutions (dpi), and text objects: all, invisible.

    Invisible text (render mode 3) over a page-sized image is what OCR software adds to scans.
    """
    import pypdfium2.raw as pdfium_c

    covered, dpis, texts, invisible = 0.0, [], 0, 0
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_TEXT], max_depth=2):
        if obj.type == pdfium_c.FPDF_PAGEOBJ_TEXT:
            texts += 1
            invisible += pdfium_c.FPDFTextObj_GetTextRenderMode(obj.raw) == pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE
            continue
        left, bottom, right, top = obj.get_bounds()
        width_pt, height_pt = max(0.0, right - left), max(0.0, top - bottom)
        covered += width_pt * height_pt
        try:
            px_width, _ = obj.get_px_size()
            if width_pt > 1:
                dpis.append(px_width / (width_pt / 72.0))
        except Exception:  # noqa: BLE001 - an undecodable image still covers its area
            pass
    share = min(1.0, covered / page_area) if page_area > 0 else 0.0
    return share, dpis, texts, invisible


def _form_widgets(page) -> int:
    """Form-field widgets among a page's annotations (what pypdf's get_fields counted, read by PDFium
    from the pages it opens anyway: parsing the whole file again with pypdf took a third of a
    real-world PDF's time; benchmarks/RESULTS.md)."""
    import pypdfium2.raw as pdfium_c

    widgets = 0
    for index in range(pdfium_c.FPDFPage_GetAnnotCount(page.raw)):
        annotation = pdfium_c.FPDFPage_GetAnnot(page.raw, index)
        if annotation:
            widgets += pdfium_c.FPDFAnnot_GetSubtype(annotation) == pdfium_c.FPDF_ANNOT_WIDGET
            pdfium_c.FPDFPage_CloseAnnot(annotation)
    return widgets


def open_document(target, limits: dict[str, Any]) -> dict[str, Any]:
    """Worker side: a PDF or text file -> descriptors, the text to embed, and the first page's pixels.

    `limits["page_size"]` is the image encoder's input size, 0 when pages are not embedded.
    """
    import pypdfium2 as pdfium

    data = input_bytes(target, limits["max_bytes"])
    if not data:
        raise InputProblem("empty", "the file is empty")
    if not isinstance(target, bytes) and Path(target).suffix.lower() in TEXT_SUFFIXES:
        descriptors, text = _describe_text(data)
        return {"descriptors": descriptors, "text": _embeddable(text, limits), "page": None}
    if b"%PDF-" not in data[:1024]:
        raise InputProblem("not_pdf", "no %PDF- header in the first 1024 bytes")
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        # PDFium's own error code says why the document did not load
        encrypted = exc.err_code in (pdfium.raw.FPDF_ERR_PASSWORD, pdfium.raw.FPDF_ERR_SECURITY)
        raise InputProblem("encrypted" if encrypted else "corrupt", str(exc)[:300]) from None
    try:
        n_pages = len(pdf)
        if n_pages == 0:
            raise InputProblem("corrupt", "the document has no pages")
        if n_pages > limits["max_pages"]:
            raise InputProblem("too_many_pages", f"{n_pages} pages, over the limit of {limits['max_pages']}")
        meta = pdf.get_metadata_dict(skip_empty=True)
        chars = 0
        page_texts: list[str] = []
        page_pixels = None
        image_share = 0.0
        dpis: list[float] = []
        text_objects = invisible_objects = widgets = 0
        sizes = set()
        rotated = 0
        scanned = min(n_pages, SCAN_PAGES)
        for index in range(scanned):
            page = pdf[index]
            width, height = page.get_size()
            sizes.add((round(width), round(height)))
            rotated |= page.get_rotation() != 0
            textpage = page.get_textpage()
            text = textpage.get_text_range()
            chars += len(text.strip())
            page_texts.append(text)
            share, page_dpis, texts, invisible = _page_objects(page, width * height)
            image_share += share
            dpis += page_dpis
            text_objects += texts
            invisible_objects += invisible
            widgets += _form_widgets(page)
            if index == 0:
                first_size = page_size_class(width, height)
                if limits["page_size"]:
                    page_pixels = render_first_page(page, limits["page_size"])
        version = pdf.get_version()
        attachments = pdf.count_attachments()
    except InputProblem:
        raise
    except pdfium.PdfiumError as exc:
        raise InputProblem("corrupt", str(exc)[:300]) from None
    finally:
        pdf.close()
    return {
        "descriptors": {
            "pages": float(n_pages),
            "file_bytes": float(len(data)),
            "text_chars_per_page": chars / scanned,
            "text_layer": 1.0 if chars > 0 else 0.0,
            "image_area_share": image_share / scanned,
            "producer_family": producer_family(meta.get("Producer", ""), meta.get("Creator", "")),
            "page_size": first_size,
            "pdf_version": f"{version / 10:.1f}" if version else "(unknown)",
            "rotated": float(rotated),
            "mixed_page_sizes": float(len(sizes) > 1),
            "risky_keys": float(sum(data.count(key) for key in RISKY_KEYS)),
            "image_dpi": float(statistics.median(dpis)) if dpis else math.nan,
            "invisible_text_share": invisible_objects / text_objects if text_objects else 0.0,
            "form_fields": float(widgets),
            "attachments": float(attachments),
        },
        "text": _embeddable("\n".join(page_texts), limits),
        "page": page_pixels,
    }


class DocumentFeaturizer(DescriptorFeaturizer):
    """Descriptors, plus the text through the sentence encoder and the first page through the image
    encoder, each embedded in batches while workers keep opening files."""

    def __init__(self, spools: dict[str, EmbeddingSpool]):
        super().__init__()
        self.spools = spools

    def add(self, input_id: str, opened: dict[str, Any]) -> None:
        super().add(input_id, opened)
        if "text" in self.spools:
            self.spools["text"].add(input_id, opened["text"])
        if "page" in self.spools and opened["page"] is not None:
            self.spools["page"].add(input_id, opened["page"])

    def finish(self) -> FeatureSet:
        embeddings = {name: spool.matrix(self.ids) for name, spool in self.spools.items()}
        return FeatureSet(ids=list(self.ids), descriptors=self.descriptor_frame(), embeddings=embeddings)


class DocumentKind:
    name = "document"
    # what each item gets (a yes/no is a 0/1 number); tests/test_conformance.py holds the featurizer to it
    descriptors = {
        "attachments": "number",
        "file_bytes": "number",
        "form_fields": "number",
        "image_area_share": "number",
        "image_dpi": "number",
        "invisible_text_share": "number",
        "mixed_page_sizes": "number",
        "page_size": "category",
        "pages": "number",
        "pdf_version": "category",
        "producer_family": "category",
        "risky_keys": "number",
        "rotated": "number",
        "text_chars_per_page": "number",
        "text_layer": "number",
    }
    tables = {}
    structured = False
    open_input = staticmethod(open_document)

    def limits(self, context) -> dict[str, Any]:
        section = context.config.document
        return {
            "max_bytes": section.max_bytes,
            "max_pages": section.max_pages,
            "text_chars": section.text_chars,
            "page_size": context.crop_size() if section.page_embedding else 0,
        }

    def timeout(self, context) -> float:
        return context.config.document.timeout_s

    def embeddings(self, config) -> dict[str, str]:
        section = config.document
        return ({"page": "clip"} if section.page_embedding else {}) | ({"text": "text"} if section.text_model != "none" else {})

    def featurizer(self, context, source: str) -> DocumentFeaturizer:
        section = context.config.document
        spools: dict[str, EmbeddingSpool] = {}
        if section.text_model != "none":
            text = context.text_encoder()
            spools["text"] = EmbeddingSpool(
                text.encode, text.dim, section.batch_size, context.spool_path(self.name, source, "text")
            )
        if section.page_embedding:
            image = context.image_encoder()
            spools["page"] = EmbeddingSpool(
                lambda pages: image.encode_pixels(np.stack(pages)),
                image.dim,
                section.batch_size,
                context.spool_path(self.name, source, "page"),
            )
        return DocumentFeaturizer(spools)
