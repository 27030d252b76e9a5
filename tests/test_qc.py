"""QC montage and the batch's index.html: what a reader opens to check a result."""

from html.parser import HTMLParser

import numpy as np
from PIL import Image

from ich_infer.case_record import CaseResult
from ich_infer.qc import MAX_LESION_SLICES, TITLE_PX, montage_slices, qc_montage, write_qc
from ich_infer.qc_index import index_html


def test_lesion_slices_are_capped_and_framed_by_context():
    mask = np.zeros((40, 8, 8), bool)
    mask[10:30, 3:5, 3:5] = True
    mask[17, 1:7, 1:7] = True  # the largest slice must survive the thinning
    chosen = montage_slices(mask)
    lesion = [z for z in chosen if mask[z].any()]
    assert len(lesion) == MAX_LESION_SLICES and 17 in lesion and lesion[0] == 10 and lesion[-1] == 29
    assert 9 in chosen and 30 in chosen and len(chosen) == MAX_LESION_SLICES + 2
    few = np.zeros((5, 8, 8), bool)
    few[0, 2, 2] = True
    assert montage_slices(few) == [0, 1]  # no context below the first slice
    assert len(montage_slices(np.zeros((30, 8, 8), bool), (5, 25))) == 6


def _case(shape=(20, 96, 128), lesion=True):
    volume = np.full(shape, -1000.0, np.float32)
    volume[:, 10:86, 10:118] = 35.0
    mask = np.zeros(shape, bool)
    if lesion:
        volume[8:12, 40:60, 40:70] = 70.0
        mask[8:12, 40:60, 40:70] = True
    return volume, mask


def test_montage_is_native_resolution_with_a_thin_contour_and_a_title():
    volume, mask = _case()
    caption = CaseResult("case_a", "ok", "skull_stripped", 12.345, 11.0, None, 1, 0.9, True).caption()
    sheet = np.asarray(qc_montage(volume, mask, (5.0, 0.5, 0.5), caption))
    # 4 lesion slices + context above and below = 6 tiles in 4 columns; one pixel per voxel
    assert sheet.shape == (TITLE_PX + 2 * 96, 4 * 128, 3)
    red = (sheet[..., 0] == 255) & (sheet[..., 1] == 40)
    first = red[TITLE_PX:TITLE_PX + 96, 128:256]  # second tile: slice 9, the first with lesion
    assert first[40, 45] and first[59, 50] and not first[50, 55]  # the contour, not a fill
    assert red.sum() < 4 * (2 * 20 + 2 * 30) + 10
    tissue = sheet[TITLE_PX + 50, 128 + 20]
    assert tuple(tissue) == (111, 111, 111)  # 35 HU in W80/L40: (35 - 0) / 80 * 255
    assert "never-empty rule FIRED" in caption[1] and "12.35 mL" in caption[0]
    assert "skull-stripped" in caption[1]


def test_montage_corrects_only_non_square_pixels(tmp_path):
    volume, mask = _case()
    caption = CaseResult("c", "ok", "full_head", 1, 1, None, 1, 0.9, False).caption()
    path = write_qc(tmp_path / "qc" / "c.png", volume, mask, (5.0, 1.0, 0.5), caption)
    with Image.open(path) as image:
        assert image.size == (4 * 128, TITLE_PX + 2 * 192)
    assert not list((tmp_path / "qc").glob(".*"))  # written atomically, no temp left


def test_an_empty_result_still_shows_the_head():
    volume, mask = _case(lesion=False)
    empty = CaseResult("e", "ok", "full_head", 0, 0, None, 0, 0.1, False).caption()
    sheet = np.asarray(qc_montage(volume, mask, (5.0, 0.5, 0.5), empty))
    assert sheet.shape[0] == TITLE_PX + 2 * 96 and not ((sheet[..., 0] == 255) & (sheet[..., 1] == 40)).any()


class _Table(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.images, self.failed, self._cell, self._in_failed = [], [], [], None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = ""
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "ul" and attrs.get("id") == "failed":
            self._in_failed = True

    def handle_endtag(self, tag):
        if tag == "td":
            self.rows[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        elif self._in_failed and data.strip():
            self.failed.append(data)


def test_index_lists_cases_by_volume_with_thumbnails_and_failures():
    cases = [CaseResult("small", "ok", "full_head", 1.5, 1.2, None, 1, 0.9, False),
             CaseResult("big <b>", "ok", "full_head", 40.0, 38.0, None, 2, 0.99, False),
             CaseResult("none", "ok", "skull_stripped", 0.0, 0.0, None, 0, 0.1, False),
             CaseResult("bad", "error", error="bad.nii.gz: not a head CT")]
    parser = _Table()
    parser.feed(index_html(cases, "run"))
    body = [r for r in parser.rows if r]
    assert [r[0] for r in body] == ["big <b>", "small", "none"]  # escaped, so the name came back whole
    assert [float(r[1]) for r in body] == [40.0, 1.5, 0.0]
    assert body[2][4] == "skull_stripped"
    assert parser.images == ["big%20%3Cb%3E.png", "small.png", "none.png"]
    assert parser.failed == ["bad: bad.nii.gz: not a head CT"]


def test_predict_with_qc_writes_montages_and_an_index(tmp_path, tiny_weights):
    import shutil

    from conftest import TEST_DATA

    from ich_infer.predict import predict_folder

    shutil.copytree(TEST_DATA / "images", tmp_path / "in")
    (tmp_path / "in" / "broken.nii.gz").write_bytes(b"not an image")
    report = predict_folder(tmp_path / "in", tmp_path / "out", weights=tiny_weights, device="cpu", qc=True,
                            echo=lambda s: None)
    assert len(report.failed) == 1
    parser = _Table()
    parser.feed((tmp_path / "out" / "qc" / "index.html").read_text())
    assert len(parser.images) == 3 and all((tmp_path / "out" / "qc" / src).is_file() for src in parser.images)
    assert len(parser.failed) == 1 and "broken" in parser.failed[0]
