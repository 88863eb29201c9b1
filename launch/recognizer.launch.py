"""Launch the glimpse_ros recognizer node (and optionally RViz) in a ROS 2 install.

    ros2 launch glimpse_ros recognizer.launch.py namespace:=robot1 rviz:=true  # /robot1/image
    ros2 launch glimpse_ros recognizer.launch.py image_topic:=/cam1/image_raw # + /cam1/camera_info
    ros2 launch glimpse_ros recognizer.launch.py managed:=true   # then: ros2 lifecycle set ...

Launch arguments model, backend and image_topic override the same keys of the params file
(config/recognizer.yaml of this package when params_file is empty) only when given; left empty,
the params file's value is kept. The input topics are relative (``image``, ``camera_info``) and
follow ``namespace``. With rviz:=true the rviz2 package is looked up first: when it is
missing the launch fails before anything is started. Closing RViz ends the launch.
Without a ROS install (PyPI wheels) run the node directly instead:
    python -m glimpse_ros.recognizer --ros-args --params-file config/recognizer.yaml
"""

import os

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue

ARGUMENTS = (
    ("model", "", "Model checkpoint (.safetensors); empty = model_path of the params file"),
    ("backend", "", "Backbone engine (auto, torch, onnxruntime, openvino, tensorrt); empty = "
     "backend of the params file"),
    ("image_topic", "", "Input image topic (relative names resolve in namespace); empty = "
     "image_topic of the params file (image)"),
    ("node_name", "recognizer", "Name of the recognizer node (its topics, logger, diagnostics)"),
    ("namespace", "", "Namespace of the recognizer node"),
    ("use_sim_time", "false", "Use /clock (e.g. when playing a bag)"),
    ("managed", "false", "Start a managed (lifecycle) node that waits for configure/activate"),
    ("rviz", "false", "Start RViz with the overlay image and the glimpse markers"),
    ("params_file", "", "Parameter file; empty = config/recognizer.yaml of this package"),
)
# launch argument -> node parameter it overrides when not empty
OVERRIDES = (("model", "model_path"), ("backend", "backend"), ("image_topic", "image_topic"))
TRUE = ("true", "1", "yes", "on")


def _value(context, name: str) -> str:
    return LaunchConfiguration(name).perform(context)


def _flag(context, name: str) -> bool:
    return _value(context, name).strip().lower() in TRUE


def _actions(context) -> list:
    """Check for RViz first (nothing is started without it), then start recognizer and RViz."""
    share = get_package_share_directory("glimpse_ros")
    rviz = _flag(context, "rviz")
    if rviz:
        try:
            get_package_share_directory("rviz2")
        except PackageNotFoundError:
            raise RuntimeError("rviz:=true but the rviz2 package is not installed: install it "
                               "(ros-$ROS_DISTRO-rviz2) or launch with rviz:=false") from None
    use_sim_time = _flag(context, "use_sim_time")
    managed = _flag(context, "managed")
    default_params = os.path.join(share, "config", "recognizer.yaml")
    params_file = _value(context, "params_file") or default_params
    values = {param: _value(context, arg) for arg, param in OVERRIDES}
    overrides = {param: ParameterValue(value, value_type=str)  # str: no YAML re-typing
                 for param, value in values.items() if value}
    node_class = LifecycleNode if managed else Node
    actions = [node_class(
        package="glimpse_ros",
        executable="recognizer",
        name=_value(context, "node_name"),
        namespace=_value(context, "namespace"),
        output="screen",
        emulate_tty=True,
        parameters=[params_file, {"use_sim_time": use_sim_time, "managed": managed},
                    overrides],
    )]
    if rviz:
        actions.append(Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            arguments=["-d", os.path.join(share, "config", "recognizer.rviz")],
            parameters=[{"use_sim_time": use_sim_time}],
            on_exit=Shutdown(reason="RViz closed"),
        ))
    return actions


def generate_launch_description() -> LaunchDescription:
    """Launch arguments, then the recognizer node (plain or managed) and optional RViz."""
    args = [DeclareLaunchArgument(name, default_value=default, description=text)
            for name, default, text in ARGUMENTS]
    return LaunchDescription([*args, OpaqueFunction(function=_actions)])
