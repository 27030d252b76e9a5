"""Release checks: the tools that decide whether new weights ship, run as ``python -m training.release.<tool>``.

- ``real_scans``: the judge, one report. The ct-ich cross-validation (``ct_ich_cv``: every patient
  by the fold model that held it out, paired against a baseline), then every real head in
  ``../shared/data``, as acquired, skull-stripped, windowed and with pasted lesions, segmented by
  weights that never saw that head, then the phantom cross-validation as a secondary line.
- ``ct_ich_cv``: the ct-ich section alone.
- ``enclosure``: the skull-enclosure figure on real heads and non-head cases.
- ``paired``: two weights folders on the same held-out cases, the paired Dice difference with a
  bootstrap interval (per haemorrhage subtype with ``--cases``).
- ``cv_table``: a cross-validation report as Markdown tables, per fold and per subtype.
- ``edge_profile``: brain density by distance from the brain-mask edge, real heads against
  phantoms: whether the phantoms' inner-table bloom brackets the real scanners'.
"""
