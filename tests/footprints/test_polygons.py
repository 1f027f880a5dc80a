"""polygons_from_labels: exact georeferencing, holes, p_mean."""

from __future__ import annotations

import numpy as np
from affine import Affine
from shapely.geometry import box

from geoseg.footprints.polygons import polygons_from_labels


def test_square_lands_at_known_map_coordinates():
    labels = np.zeros((40, 60), np.int32)
    labels[10:20, 30:45] = 1  # rows 10..19, cols 30..44
    transform = Affine(2.0, 0.0, 1000.0, 0.0, -2.0, 5000.0)
    [(poly, p_mean, label)] = polygons_from_labels(labels, transform, np.ones((40, 60), np.float32))
    assert label == 1
    assert poly.equals(box(1060.0, 4960.0, 1090.0, 4980.0)), poly.wkt
    assert poly.area == 10 * 15 * 4.0
    assert p_mean == 1.0


def test_p_mean_per_instance_and_order():
    rng = np.random.default_rng(0)
    prob = rng.random((30, 30)).astype(np.float32)
    labels = np.zeros((30, 30), np.int32)
    labels[2:8, 2:9] = 2
    labels[15:25, 10:20] = 1
    out = polygons_from_labels(labels, Affine.identity(), prob)
    assert [lab for _, _, lab in out] == [1, 2]
    for poly, p_mean, lab in out:
        assert np.isclose(p_mean, prob[labels == lab].mean())
        assert np.isclose(poly.area, (labels == lab).sum())


def test_holes_are_kept():
    labels = np.zeros((20, 20), np.int32)
    labels[2:18, 2:18] = 1
    labels[8:12, 8:12] = 0
    [(poly, _, _)] = polygons_from_labels(labels, Affine.identity(), np.ones((20, 20)))
    assert len(poly.interiors) == 1
    assert poly.area == 16 * 16 - 16


def test_empty_labels_give_no_polygons():
    assert polygons_from_labels(np.zeros((5, 5), np.int32), Affine.identity(), np.zeros((5, 5))) == []
