"""Probability rasters -> building footprints (named `footprints`, not `vectorize`, so the package never
shadows the `geoseg.vectorize()` function).

Import the functions from their modules (the package re-exports nothing, since
``regularize`` is both a module and a function name):

* :func:`geoseg.footprints.instances.label_instances`: probability map -> instance labels.
* :func:`geoseg.footprints.polygons.polygons_from_labels`: labels -> map-coordinate polygons.
* :func:`geoseg.footprints.regularize.regularize`: square an outline, behind an IoU gate.
* :func:`geoseg.footprints.raster.vectorize_raster`: a whole raster, in bounded memory.
* :class:`geoseg.footprints.finish.Finisher`: pixel-space instances -> output footprints (CRS, simplification, squaring, area filter).
"""
