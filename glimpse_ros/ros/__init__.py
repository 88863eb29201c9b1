"""ROS 2 layer: the node and its message conversions (tools around it: glimpse_ros.tools)."""
