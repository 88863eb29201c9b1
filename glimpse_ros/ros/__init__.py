"""ROS 2 layer: the only modules that import rclpy or ROS messages."""
