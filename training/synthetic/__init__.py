"""Synthetic NTU-format activity data: 25-joint figures whose classes differ by limb motion.

``python -m training.synthetic --out DIR --videos N --seed S`` writes
``SsssCcccPpppRrrrAaaa_rgb.avi`` and ``.skeleton`` files in the NTU RGB+D on-disk format
(DESIGN §5), so the NTU loader, splits and training code run unchanged on CPU-sized data.
"""
