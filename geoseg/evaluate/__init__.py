"""Accuracy of building footprints and probability rasters against reference polygons."""
