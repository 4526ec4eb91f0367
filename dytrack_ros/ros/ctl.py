"""Control a running tracker node without the ROS 2 command line (which a pip-installed ROS does not have):

    dytrack-ctl --namespace /drone state                    # lifecycle state and the newest result
    dytrack-ctl --namespace /drone set-target 320 200 60 90 # ~/set_target; prints the node's answer
    dytrack-ctl --namespace /drone reset                    # ~/reset
    dytrack-ctl --namespace /drone lifecycle deactivate     # configure | activate | deactivate | cleanup
    dytrack-ctl --namespace /drone param list               # every parameter and its value
    dytrack-ctl --namespace /drone param get lost_threshold
    dytrack-ctl --namespace /drone param set lost_threshold 0.2   # values read as YAML, as `ros2 param set` does

(venv: `.venv/bin/dytrack-ctl`, or `python -m dytrack_ros.ros.ctl ...`; colcon: `ros2 run dytrack_ros dytrack-ctl`).
On a ROS install `ros2 service call` / `ros2 lifecycle set` / `ros2 param` do the same. Exit status 0 when the node
did what was asked, 1 when it refused (the reason is printed), 2 when it could not be reached.
"""
from __future__ import annotations

import argparse
import sys
import time

TRANSITIONS = ("configure", "activate", "deactivate", "cleanup")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--namespace", default="/", help="the tracker's namespace (its launch's namespace:=)")
    p.add_argument("--node", default="dytrack_tracker", help="the tracker node's name")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the node")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("state", help="lifecycle state and the newest tracking result")
    box = sub.add_parser("set-target", help="start tracking this box (image pixels) on the newest frame")
    for name in ("x", "y", "width", "height"):
        box.add_argument(name, type=float)
    sub.add_parser("reset", help="stop tracking")
    life = sub.add_parser("lifecycle", help="a lifecycle transition")
    life.add_argument("transition", choices=TRANSITIONS)
    param = sub.add_parser("param", help="list, get or set the node's parameters")
    param.add_argument("action", choices=("list", "get", "set"))
    param.add_argument("name", nargs="?", default="")
    param.add_argument("value", nargs="?", default=None, help="read as YAML: 0.2, true, '[0.3, 0.3, 0.3, 0]'")
    return p.parse_args(argv)


class Control:
    def __init__(self, namespace: str, node_name: str, timeout: float):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("dytrack_ctl", namespace=namespace, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.prefix, self.timeout = node_name, timeout

    def call(self, srv_type, service: str, request):
        client = self.node.create_client(srv_type, f"{self.prefix}/{service}")
        if not client.wait_for_service(timeout_sec=self.timeout):
            raise ConnectionError(f"{client.srv_name} is not available: is the tracker running in this namespace "
                                  "(--namespace) and active?")
        future = client.call_async(request)
        self.executor.spin_until_future_complete(future, timeout_sec=self.timeout)
        if not future.done():
            raise ConnectionError(f"{client.srv_name} did not answer within {self.timeout:g} s")
        return future.result()

    def newest_state(self, wait: float = 2.5):
        """(the node's newest /diagnostics values or None, its newest ~/target or None). /diagnostics comes in every
        lifecycle state (every diagnostics_period); ~/target only while something is tracked."""
        from diagnostic_msgs.msg import DiagnosticArray

        from dytrack_ros.msg import TrackedTarget
        targets, status = [], []
        name = self.node.resolve_topic_name(self.prefix) + ": "

        def on_diagnostics(msg):
            status.extend({kv.key: kv.value for kv in s.values} for s in msg.status if s.name.startswith(name))
        self.node.create_subscription(TrackedTarget, f"{self.prefix}/target", targets.append, 10)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
        end = time.monotonic() + wait
        while not status and time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)
        return (status[-1] if status else None), (targets[-1] if targets else None)

    def close(self):
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def run(args) -> int:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from std_srvs.srv import Trigger

    from dytrack_ros.srv import SetTarget
    ctl = Control(args.namespace, args.node, args.timeout)
    try:
        if args.command == "state":
            state = ctl.call(GetState, "get_state", GetState.Request()).current_state.label
            print(state_line(state, *ctl.newest_state()))
            return 0
        if args.command == "param":
            return param(ctl, args)
        if args.command == "set-target":
            req = SetTarget.Request()
            req.box.x, req.box.y, req.box.width, req.box.height = args.x, args.y, args.width, args.height
            answer = ctl.call(SetTarget, "set_target", req)
        elif args.command == "reset":
            answer = ctl.call(Trigger, "reset", Trigger.Request())
        else:
            req = ChangeState.Request()
            req.transition.id = getattr(Transition, f"TRANSITION_{args.transition.upper()}")
            ok = ctl.call(ChangeState, "change_state", req).success
            state = ctl.call(GetState, "get_state", GetState.Request()).current_state.label
            print(f"{args.transition}: {'done' if ok else 'refused'}; lifecycle: {state}")
            return 0 if ok else 1
        print(("done: " if answer.success else "refused: ") + answer.message)
        return 0 if answer.success else 1
    finally:
        ctl.close()


def state_line(lifecycle: str, status, target) -> str:
    """`lifecycle: active; tracker: tracking box=[...] ...`: the tracking state from /diagnostics (idle, tracking,
    lost, stale; the kept target while paused), stage and score from the newest ~/target."""
    from .messages import STATE_LABEL
    line = f"lifecycle: {lifecycle}"
    if status is not None:
        line += f"; tracker: {status.get('state', '?')}"
        if status.get("tracker_state", "idle") != "idle":
            line += f" box={status.get('box')}" + (f" (kept while {lifecycle}: {status['tracker_state']})"
                                                   if lifecycle != "active" else "")
        if status.get("state") == "lost":
            line += f" lost_seconds={status.get('lost_seconds')}"
    elif target is not None:
        line += f"; tracker: {STATE_LABEL.get(target.state, target.state)}"
    if target is not None and target.state != target.STATE_IDLE and lifecycle == "active":
        line += f" stage={target.stages_run}/{target.num_stages} score={target.score:.2f}"
    if status is None:
        line += "; no /diagnostics from the node within 2.5 s"
    return line


def param(ctl, args) -> int:
    """`ros2 param list/get/set` through the node's parameter services."""
    from rcl_interfaces.msg import Parameter
    from rcl_interfaces.srv import GetParameters, ListParameters, SetParameters
    from rclpy.parameter import get_parameter_value, parameter_value_to_python
    if args.action == "list":
        names = sorted(ctl.call(ListParameters, "list_parameters", ListParameters.Request()).result.names)
        values = ctl.call(GetParameters, "get_parameters", GetParameters.Request(names=names)).values
        for name, value in zip(names, values):
            print(f"{name}: {parameter_value_to_python(value)!r}")
        return 0
    if not args.name:
        raise SystemExit(f"dytrack-ctl param {args.action}: give a parameter name")
    if args.action == "get":
        values = ctl.call(GetParameters, "get_parameters", GetParameters.Request(names=[args.name])).values
        if not values or values[0].type == 0:    # rclpy answers an unknown name with no value (or PARAMETER_NOT_SET)
            print(f"refused: the node has no parameter {args.name!r} (dytrack-ctl param list)")
            return 1
        print(f"{args.name}: {parameter_value_to_python(values[0])!r}")
        return 0
    if args.value is None:
        raise SystemExit("dytrack-ctl param set: give a value")
    req = SetParameters.Request(parameters=[Parameter(name=args.name, value=get_parameter_value(args.value))])
    result, = ctl.call(SetParameters, "set_parameters", req).results
    if result.successful:
        print(f"done: {args.name} set to {parameter_value_to_python(req.parameters[0].value)!r}")
        return 0
    reason = result.reason or "refused without a reason"
    if "read-only" in reason or "read only" in reason:   # rclpy's words; say what does apply it
        reason += (f" ({args.name} is read at start: set it in the parameter file or with "
                   f"`-p {args.name}:=...` and restart the node)")
    print(f"refused: {reason}")
    return 1


def bad_name(args) -> str:
    """Why --node or --namespace is no ROS name ('' when both are), in one line (rclpy's own is a 3-line drawing)."""
    from rclpy.exceptions import NameValidationException
    from rclpy.validate_namespace import validate_namespace
    from rclpy.validate_node_name import validate_node_name
    for option, value, check in (("--node", args.node, validate_node_name),
                                 ("--namespace", "/" + args.namespace.lstrip("/") if args.namespace.strip("/") else "/",
                                  validate_namespace)):
        try:
            check(value)
        except NameValidationException as exc:
            return f"{option} {getattr(args, option[2:])!r:.80}: {str(exc).splitlines()[0].strip().rstrip(':')}"
    return ""


def main(argv=None):
    args = parse_args(argv)
    refused = bad_name(args)
    if refused:
        print(f"dytrack-ctl: {refused}", file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(run(args))
    except ConnectionError as exc:
        print(f"dytrack-ctl: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
