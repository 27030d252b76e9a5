"""Plain-text tables and phantom lesion types, shared by the release checks and the benchmarks."""

from __future__ import annotations

import json
from pathlib import Path


def table(rows: list[tuple], header: tuple) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def line(row: tuple) -> str:
        return "  ".join(str(x).ljust(w) for x, w in zip(row, widths))

    return "\n".join([line(header), line(tuple("-" * w for w in widths))] + [line(r) for r in rows])


def lesion_types(catalogues: list[Path]) -> dict[str, set[str]]:
    """case -> the haemorrhage types painted into it, from phantom ``cases.json`` files."""
    out = {}
    for path in catalogues:
        for case, entry in json.loads(Path(path).read_text()).items():
            out[case] = {lesion["type"] for lesion in entry.get("lesions", []) if "type" in lesion}
    return out
