"""The ROS 2 node, the video player and image conversion (the only layer that imports rclpy)."""
