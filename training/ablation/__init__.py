"""Attention ablation on the synthetic distractor scene (paper Tables 3-4).

``python -m training.ablation --config config/train/ablation.yaml --seeds 3`` (see ``__main__``).
"""
