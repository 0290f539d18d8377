"""Pictures of untrusted inputs are made in isolated workers with the job's limits, never in the
caller's process: what the investigation notebook and the reports show."""

from __future__ import annotations

import io

from PIL import Image

from drift.demo import world
from drift.features.kinds.base import InputError
from drift.report.thumbnails import thumbnails

from .test_kinds import encode, gradient


def test_images_and_pdfs_become_small_pngs_and_hostile_files_errors(tmp_path):
    import random

    files = {
        "photo": encode(gradient(size=(900, 600)), "JPEG"),
        "bomb": encode(Image.new("L", (3000, 3000)), "PNG"),  # 9 MP against a 4 MP limit
        "junk": b"\x00\x01garbage" * 10,
    }
    paths = {}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths[name] = tmp_path / name
    pictures = thumbnails("image", paths, {"max_pixels": 4_000_000}, size=128)
    with Image.open(io.BytesIO(pictures["photo"])) as png:
        assert png.format == "PNG" and max(png.size) == 128
    assert isinstance(pictures["bomb"], InputError) and pictures["bomb"].category == "bomb"
    assert isinstance(pictures["junk"], InputError) and pictures["junk"].category == "corrupt"

    (tmp_path / "invoice.pdf").write_bytes(world.invoice_pdf(random.Random(1)))
    (tmp_path / "fake.pdf").write_bytes(b"not a pdf at all")
    pages = thumbnails("document", {"invoice": tmp_path / "invoice.pdf", "fake": tmp_path / "fake.pdf"})
    with Image.open(io.BytesIO(pages["invoice"])) as png:
        assert png.format == "PNG" and max(png.size) <= 256
    assert isinstance(pages["fake"], InputError) and pages["fake"].category == "not_pdf"
