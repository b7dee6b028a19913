"""Batch focus QC on Dask distributed (`finefocus qc`).

discover (which slides) → plan (a slide's facts and tile chunks) → compute (chunks, on workers) →
finish (grids, fused-IQA fit, depth map, verdict) → outputs (npy, PNG, TSV, done-markers) and
report (HTML); driver runs it all on a LocalCluster, an existing scheduler or in this process.
Calibration maps FocusLiteNN scores to µm; verdict holds the thresholds.
"""
