"""Launch the glimpse_ros recognizer node (and optionally RViz) in a ROS 2 install.

    ros2 launch glimpse_ros recognizer.launch.py image_topic:=/camera/image_raw rviz:=true

Launch arguments model, backend and image_topic override the same keys of the params file
(config/recognizer.yaml by default) only when given; left empty, the params file's value is kept.
Without a ROS install (PyPI wheels) run the node directly instead:
    python -m glimpse_ros.recognizer --ros-args --params-file config/recognizer.yaml
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ("model", "", "Model checkpoint (.safetensors); empty = model_path of the params file"),
    ("backend", "", "Backbone engine (auto, torch, onnxruntime, openvino, tensorrt); empty = "
     "backend of the params file"),
    ("image_topic", "", "Input image topic; empty = image_topic of the params file"),
    ("namespace", "", "Namespace of the recognizer node"),
    ("use_sim_time", "false", "Use /clock (e.g. when playing a bag)"),
    ("rviz", "false", "Start RViz with the overlay image and the glimpse markers"),
    ("params_file", "", "Parameter file; empty = config/recognizer.yaml of this package"),
)
# launch argument -> node parameter it overrides when not empty
OVERRIDES = (("model", "model_path"), ("backend", "backend"), ("image_topic", "image_topic"))


def _recognizer(context, use_sim_time: ParameterValue) -> list[Node]:
    """Recognizer node; launch arguments given a value override the params file's keys."""
    values = {param: LaunchConfiguration(arg).perform(context) for arg, param in OVERRIDES}
    overrides = {param: ParameterValue(value, value_type=str)  # str: no YAML re-typing
                 for param, value in values.items() if value}
    return [Node(
        package="glimpse_ros",
        executable="recognizer",
        name="recognizer",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=[LaunchConfiguration("params_file"), {"use_sim_time": use_sim_time},
                    overrides],
    )]


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
    recognizer = OpaqueFunction(function=_recognizer, args=[use_sim_time])
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", rviz_config],
        parameters=[{"use_sim_time": use_sim_time}],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return LaunchDescription([*args, recognizer, rviz])
