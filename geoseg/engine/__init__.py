"""The tiling engine: plan, read, predict, stitch, write."""
