"""Launch the glimpse_ros recognizer node (and optionally RViz) in a ROS 2 install.

    ros2 launch glimpse_ros recognizer.launch.py image_topic:=/camera/image_raw rviz:=true

Launch arguments override the same keys of the params file (config/recognizer.yaml by default).
Without a ROS install (PyPI wheels) run the node directly instead:
    python -m glimpse_ros.recognizer --ros-args --params-file config/recognizer.yaml
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ("model", "", "Model checkpoint (.safetensors); empty = the shipped demo model"),
    ("backend", "auto", "Backbone engine: auto, torch, onnxruntime, openvino, tensorrt"),
    ("image_topic", "image", "Input image topic"),
    ("namespace", "", "Namespace of the recognizer node"),
    ("use_sim_time", "false", "Use /clock (e.g. when playing a bag)"),
    ("rviz", "false", "Start RViz with the overlay image and the glimpse markers"),
    ("params_file", "", "Parameter file; empty = config/recognizer.yaml of this package"),
)


def generate_launch_description() -> LaunchDescription:
    """Recognizer node with the params file and launch-argument overrides, plus optional RViz."""
    share = FindPackageShare("glimpse_ros")
    default_params = PathJoinSubstitution([share, "config", "recognizer.yaml"])
    rviz_config = PathJoinSubstitution([share, "config", "recognizer.rviz"])
    use_sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    args = [DeclareLaunchArgument(name, default_value=default, description=text)
            for name, default, text in ARGUMENTS]
    args[-1] = DeclareLaunchArgument("params_file", default_value=default_params,
                                     description=ARGUMENTS[-1][2])
    recognizer = Node(
        package="glimpse_ros",
        executable="recognizer",
        name="recognizer",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "model_path": ParameterValue(LaunchConfiguration("model"), value_type=str),
                "backend": ParameterValue(LaunchConfiguration("backend"), value_type=str),
                "image_topic": ParameterValue(LaunchConfiguration("image_topic"), value_type=str),
                "use_sim_time": use_sim_time,
            },
        ],
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", rviz_config],
        parameters=[{"use_sim_time": use_sim_time}],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return LaunchDescription([*args, recognizer, rviz])
