"""Random chips at a random GSD from training regions (in memory or read tile by tile), with augmentation."""

from __future__ import annotations

import math

import numpy as np

from geoseg.errors import InputError
from geoseg.train.experiment import MIN_CROP
from geoseg.train.regions import instance_targets


class ChipSampler:
    """Draw ``(image uint8 (3,S,S), target uint8 (T,S,S), valid uint8 (S,S))`` chips; the targets are
    the first ``n_targets`` of building / border / gap (see :func:`~geoseg.train.regions.instance_targets`).

    The chip GSD is log-uniform in ``gsd_range``: this scale jitter is what makes
    a model robust to the ground resolution of its input. A region is drawn with a
    chance proportional to its valid ground area. A region with ``chip_gsd_m = (lo, hi)``
    serves only chips whose GSD lies in that span: the GSD is drawn first, then a region
    among those that serve it (e.g. a place's z21 mosaic for fine chips, its z19 for
    coarse ones, so that chips are real imagery at their GSD rather than upsampled).

    ``regions`` are :class:`~geoseg.train.regions.Region` or
    :class:`~geoseg.train.tiles.TiledRegion`: anything with ``gsd_m``, ``valid_pixels``
    and ``draw(rng, crop)``.
    """

    def __init__(self, regions: list, size: int, gsd_range: tuple[float, float],
                 seed: int = 0, augment: bool = True, min_valid: float = 0.6, n_targets: int = 2,
                 color_shift: int = 0):
        self.regions = regions
        self.size = size
        self.gsd_range = gsd_range
        self.rng = np.random.default_rng(seed)
        self.min_valid = min_valid
        self.n_targets = n_targets
        self.area = np.array([r.valid_pixels * r.gsd_m ** 2 for r in regions], dtype=float)
        self.p = self.area / self.area.sum()
        self.spans = [getattr(r, "chip_gsd_m", None) for r in regions]
        if all(s is None for s in self.spans):
            self.spans = None  # every region serves every GSD: drawn by valid ground area alone
        self.n_bands, self.color_shift = (getattr(regions[0], "n_bands", 3) if regions else 3), color_shift
        self.aug = _augmentations(seed, color_shift, self.n_bands) if augment else None

    def reseed(self, seed: int) -> None:
        """Draw from here on as a sampler made with ``seed`` would (chips and augmentations): one seed per epoch
        makes an epoch's chips depend on the seed and the epoch alone, so a resumed run draws what an
        uninterrupted one draws."""
        self.rng = np.random.default_rng(seed)
        if self.aug is not None:
            self.aug = _augmentations(seed, self.color_shift, self.n_bands)
        for region in self.regions:  # tiles cached in the last epoch would steer this one's draws (a resumed
            getattr(region, "clear_cache", lambda: None)()  # process starts with none): each epoch starts empty

    @classmethod
    def from_config(cls, regions: list, tcfg: dict, seed: int, n_targets: int) -> ChipSampler:
        """The sampler an experiment's ``[train]`` table asks for (chip size, GSD range, colour shift)."""
        return cls(regions, int(tcfg["chip_size"]), tuple(tcfg["gsd_range"]), seed=seed, n_targets=n_targets,
                   color_shift=int(tcfg.get("color_shift", 0)))

    max_tries = 200  # windows tried for one chip before giving up on the data

    def sample(self):
        """One chip ``(image, target, valid)``: see :meth:`sample_with_gsd`."""
        return self.sample_with_gsd()[1:]

    def sample_with_gsd(self):
        """``(gsd, image, target, valid)`` of one chip.

        The GSD is drawn once per chip and kept while windows are tried (a region among those serving it, then a
        place in it), until one is at least ``min_valid`` valid. So the chips' GSDs follow the log-uniform law
        whatever share of the windows is nodata. (Drawing a new GSD on each miss, as before 2026-11-30, favoured
        fine GSDs: coarse chips need larger windows, which are more often too masked. On the default model's
        training mosaics the coarsest sixth of 0.075-0.6 m got 8 % of the chips instead of 17 %.)"""
        import cv2

        gsd = self._gsd()
        p = self.p if self.spans is None else self.serving(gsd)
        for _ in range(self.max_tries):
            region = self.regions[self.rng.choice(len(self.regions), p=p)]
            crop = max(MIN_CROP, round(self.size * gsd / region.gsd_m))
            window = region.draw(self.rng, crop)
            if window is None:
                continue
            image, inst, valid = window
            if valid.mean() < self.min_valid:
                continue
            img = np.ascontiguousarray(image.transpose(1, 2, 0))  # (Y, X, C); cv2 drops a single band's axis
            val = valid.astype(np.float32)
            interp = cv2.INTER_AREA if crop > self.size else cv2.INTER_LINEAR
            img = cv2.resize(img, (self.size, self.size), interpolation=interp).reshape(self.size, self.size, -1)
            # centre-aligned nearest, as INTER_AREA and INTER_LINEAR are: plain INTER_NEAREST takes each block's
            # top-left pixel, and labels of a chip k times coarser sat (k - 1) / 2 base pixels off their imagery
            inst = cv2.resize(inst.astype(np.float32), (self.size, self.size),
                              interpolation=cv2.INTER_NEAREST_EXACT).astype(np.int32)
            lab = instance_targets(inst, self.n_targets)
            val = (cv2.resize(val, (self.size, self.size), interpolation=interp) > 0.99).astype(np.uint8)
            img = np.where(val[..., None] > 0, img, 0).astype(np.uint8)
            if self.aug is not None:
                out = self.aug(image=img, masks=[*lab, val])
                img, masks = out["image"], out["masks"]
                lab, val = np.stack(masks[:-1]), masks[-1]
            return gsd, img.transpose(2, 0, 1), lab, val
        raise InputError(f"could not draw a training chip at {gsd:.3g} m that is at least {self.min_valid:.0%} valid in "
                         f"{self.max_tries} windows: the imagery has too few places that large; lower the top of "
                         f"train.gsd_range or train.chip_size, or add larger rasters (or larger aoi areas)")

    def _gsd(self) -> float:
        lo, hi = self.gsd_range
        return math.exp(self.rng.uniform(math.log(lo), math.log(hi)))

    def serving(self, gsd: float) -> np.ndarray:
        """The chance of each region for a chip at ``gsd``: by valid ground area among the regions that serve it."""
        ok = np.array([s is None or s[0] <= gsd <= s[1] for s in (self.spans or [None] * len(self.regions))])
        if not ok.any():
            raise ValueError(f"no training region serves chips at {gsd:.3g} m; widen the entries' chip_gsd_m "
                             f"to cover train.gsd_range {list(self.gsd_range)}")
        w = np.where(ok, self.area, 0.0)
        return w / w.sum()

    def batch(self, n: int):
        chips = [self.sample() for _ in range(n)]
        return tuple(np.stack(parts) for parts in zip(*chips))


def worker_batches(regions: list, tcfg: dict, n_targets: int, seed_base: int, workers: int):
    """An endless iterator of ``(image, target, valid)`` batches drawn in ``workers`` processes (torch's DataLoader;
    a GPU's demand outruns one sampling process). Worker ``i`` samples with seed ``seed_base + i + 1`` and batches
    arrive in worker order, so a stream is the same on every run. ``tcfg`` is the experiment's ``[train]`` table."""
    import torch

    class _Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return chip_stream(regions, tcfg, n_targets, seed_base)

    loader = torch.utils.data.DataLoader(_Stream(), batch_size=None, num_workers=workers, prefetch_factor=4,
                                         pin_memory=torch.cuda.is_available())
    return iter(loader)


def chip_stream(regions, tcfg, n_targets, seed_base):
    """Endless batches as tensors from one :class:`ChipSampler` (seeded ``seed_base``, plus ``1 + worker id`` in a
    DataLoader worker)."""
    import cv2
    import torch

    info = torch.utils.data.get_worker_info()
    wid = 0 if info is None else info.id + 1
    if info is not None:  # one thread per worker: the workers are the parallelism
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
    sampler = ChipSampler.from_config(regions, tcfg, seed_base + wid, n_targets)
    while True:
        img, lab, val = sampler.batch(int(tcfg["batch_size"]))
        yield torch.from_numpy(img), torch.from_numpy(lab), torch.from_numpy(val)


def _augmentations(seed: int, color_shift: int = 0, n_bands: int = 3):
    """Flips, rotations, colour jitter, blur and noise; ``color_shift`` > 0 adds an independent shift of each RGB
    channel by up to that many grey levels (half the chips), i.e. white-balance changes between cameras and captures.
    Imagery of other than three bands gets brightness and contrast changes instead of the colour jitter (saturation
    and hue are RGB notions) and no colour shift."""
    import os

    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations would look for updates online at import
    import albumentations as A

    return A.Compose(
        [
            A.HorizontalFlip(), A.VerticalFlip(), A.RandomRotate90(),
            A.ColorJitter(brightness=0.25, contrast=0.25, saturation=0.25, hue=0.04, p=0.8) if n_bands == 3
            else A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, p=0.8),
            A.GaussianBlur(blur_limit=(3, 5), p=0.15),
            A.GaussNoise(std_range=(0.01, 0.05), p=0.15),
            *([A.RGBShift(r_shift_limit=color_shift, g_shift_limit=color_shift, b_shift_limit=color_shift, p=0.5)]
              if color_shift and n_bands == 3 else []),
        ],
        seed=seed,
    )
