"""One case's outcome, described once: ``volumes.csv``'s columns, ``report.json``'s case fields, the QC
caption and the docs table (``docs/inference.md``, checked by a test) all come from :class:`CaseResult`.

Volumes are rounded once, here, so the console, the CSV, the QC title and the HTML index print the
same figure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


def _column(doc: str, default=None, csv: bool = True):
    return field(default=default, metadata={"doc": doc, "csv": csv})


@dataclass
class CaseResult:
    case: str = _column("case id: the input file name without its extension, or the DICOM folder's name")
    status: str = _column("ok, skipped (mask already there) or error", "")
    input_kind: str = _column("full_head or skull_stripped, as the input contract read it", "")
    volume_ml: float | None = _column("haemorrhage volume in mL, from the mask's voxel count")
    abc2_ml: float | None = _column("ABC/2 estimate (Kothari) of the largest component in mL")
    abc2_error_pct: float | None = _column("deviation of ABC/2 from the voxel-count volume, in %")
    components: int | None = _column("connected components in the mask")
    max_probability: float | None = _column("highest ensemble probability inside the brain")
    rescued: bool | None = _column("true when the never-empty rule kept the most probable component")
    runtime_s: float | None = _column("seconds for this case")
    error: str = _column("the one-line cause when status is error", "")
    output: str = _column("the mask's path", "", csv=False)
    read: dict = field(default_factory=dict, metadata={"doc": "how a DICOM series was read", "csv": False})

    @classmethod
    def segmented(cls, case: str, seg, runtime_s: float, **more) -> "CaseResult":
        """The record of a segmented case (``seg``: ``predict.Segmentation``), rounded once."""
        error = 100.0 * (seg.abc2_ml - seg.volume_ml) / seg.volume_ml if seg.volume_ml > 0 else None
        return cls(case, "ok", seg.input_kind, round(seg.volume_ml, 2), round(seg.abc2_ml, 2),
                   None if error is None else round(error, 1), seg.components, round(seg.probability_max, 4),
                   seg.rescued, round(runtime_s, 2), **more)

    def csv_row(self) -> list:
        row = asdict(self)
        return ["" if row[k] is None else row[k] for k in CSV_COLUMNS]

    def caption(self) -> tuple[str, str]:
        """The QC montage's two title lines."""
        rule = "never-empty rule FIRED (kept the most probable component)" if self.rescued else \
            "never-empty rule not used"
        return (f"{self.case}   {self.volume_ml or 0:.2f} mL   ABC/2 {self.abc2_ml or 0:.2f} mL   "
                f"{self.components or 0} component(s)",
                f"input: {self.input_kind.replace('_', '-')}   {rule}   window W80/L40")


CSV_COLUMNS = [f.name for f in fields(CaseResult) if f.metadata.get("csv", True)]
COLUMN_DOCS = {f.name: f.metadata["doc"] for f in fields(CaseResult) if f.metadata.get("csv", True)}
