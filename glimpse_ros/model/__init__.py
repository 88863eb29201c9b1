"""Pure PyTorch Glimpse Clouds model (no ROS imports)."""
