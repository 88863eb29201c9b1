"""glimpse_ros: real-time activity recognition with Glimpse Clouds for ROS 2."""

__version__ = "0.1.0"
