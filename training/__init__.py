"""Training package: datasets (NTU RGB+D, N-UCLA, synthetic), two-stage training and evaluation."""
