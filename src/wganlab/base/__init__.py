"""Files, checkpoints, devices and pixels: the layer below training and measuring."""
