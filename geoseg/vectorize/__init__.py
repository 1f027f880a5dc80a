"""Probability rasters -> building footprints.

Import the functions from their modules (the package re-exports nothing, since
``regularize`` is both a module and a function name):

* :func:`geoseg.vectorize.instances.label_instances`: probability map -> instance labels.
* :func:`geoseg.vectorize.polygons.polygons_from_labels`: labels -> map-coordinate polygons.
* :func:`geoseg.vectorize.regularize.regularize`: square an outline, behind an IoU gate.
* :func:`geoseg.vectorize.raster.vectorize_raster`: a whole raster, in bounded memory.
"""
