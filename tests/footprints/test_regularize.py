"""regularize: squaring rectangles, the IoU gate, validity."""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import Point, Polygon, box

from geoseg.footprints.regularize import dominant_orientation, iou, regularize


def _noisy_rectangle(angle_deg: float, seed: int) -> tuple[Polygon, Polygon]:
    """A 40 x 20 rectangle rotated by ``angle_deg``, and a jittered copy (1-unit vertex spacing)."""
    rng = np.random.default_rng(seed)
    truth = affinity.rotate(box(0, 0, 40, 20), angle_deg, origin=(0, 0))
    xy = np.asarray(shapely.segmentize(truth, 1.0).exterior.coords)[:-1]
    while True:  # jitter until the ring does not cross itself (deterministic for a seed)
        noisy = Polygon(xy + rng.normal(0.0, 0.25, xy.shape))
        if noisy.is_valid:
            return truth, noisy


def _corner_angles_deg(poly: Polygon) -> np.ndarray:
    xy = np.asarray(poly.exterior.coords)[:-1]
    a, b = np.roll(xy, 1, axis=0) - xy, np.roll(xy, -1, axis=0) - xy
    cos = (a * b).sum(1) / (np.hypot(*a.T) * np.hypot(*b.T))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_noisy_rotated_rectangle_becomes_a_rectangle():
    for seed, angle in ((0, 30.0), (1, 70.0), (2, 5.0)):
        truth, noisy = _noisy_rectangle(angle, seed)
        out, status = regularize(noisy)
        assert status == 0
        assert out.is_valid
        assert len(out.exterior.coords) - 1 == 4
        assert np.allclose(_corner_angles_deg(out), 90.0, atol=1e-6)
        err = (math.degrees(dominant_orientation(out)) - angle + 45) % 90 - 45
        assert abs(err) < 3.0, (angle, err)
        assert iou(out, truth) > 0.95


def test_rotated_l_shape_keeps_six_corners():
    ell = affinity.rotate(Polygon([(0, 0), (30, 0), (30, 10), (10, 10), (10, 30), (0, 30)]), 17)
    out, status = regularize(ell)
    assert status == 0
    assert len(out.exterior.coords) - 1 == 6
    assert iou(out, ell) > 0.99


def test_circle_fails_the_gate_and_is_returned_unchanged():
    circle = Point(0, 0).buffer(10, quad_segs=16)
    out, status = regularize(circle)
    assert status == 1
    assert out is circle
    squared, forced = regularize(circle, min_iou=0.0)  # without the gate it would be squared
    assert forced == 0 and len(squared.exterior.coords) - 1 == 4


def test_invalid_or_empty_input_is_kept():
    bowtie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    assert regularize(bowtie) == (bowtie, 1)
    empty = Polygon()
    assert regularize(empty)[1] == 1


def test_output_is_always_valid_and_respects_the_gate():
    rng = np.random.default_rng(7)
    for _ in range(40):
        n = int(rng.integers(5, 14))
        t = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = rng.uniform(5, 20, n)
        star = Polygon(np.c_[r * np.cos(t), r * np.sin(t)])
        if not star.is_valid:
            continue
        min_iou = float(rng.uniform(0.5, 0.95))
        out, status = regularize(star, min_iou)
        assert out.is_valid and not out.is_empty
        if status == 0:
            assert iou(out, star) >= min_iou
        else:
            assert out is star
