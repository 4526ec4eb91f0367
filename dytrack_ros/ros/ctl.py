"""Control a running tracker node without the ROS 2 command line (which a pip-installed ROS does not have):

    dytrack-ctl --namespace /drone state                    # lifecycle state and the newest result
    dytrack-ctl --namespace /drone set-target 320 200 60 90 # ~/set_target; prints the node's answer
    dytrack-ctl --namespace /drone reset                    # ~/reset
    dytrack-ctl --namespace /drone lifecycle deactivate     # configure | activate | deactivate | cleanup

(venv: `.venv/bin/python -m dytrack_ros.ros.ctl ...`). On a ROS install `ros2 service call` / `ros2 lifecycle set`
do the same. Exit status 0 when the node did what was asked, 1 when it refused (the reason is printed), 2 when it
could not be reached.
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

    def newest_target(self, wait: float = 1.5):
        from dytrack_ros.msg import TrackedTarget
        got = []
        self.node.create_subscription(TrackedTarget, f"{self.prefix}/target", got.append, 10)
        end = time.monotonic() + wait
        while not got and time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)
        return got[-1] if got else None

    def close(self):
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def run(args) -> int:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from std_srvs.srv import Trigger

    from dytrack_ros.srv import SetTarget

    from .messages import STATE_LABEL
    ctl = Control(args.namespace, args.node, args.timeout)
    try:
        if args.command == "state":
            state = ctl.call(GetState, "get_state", GetState.Request()).current_state.label
            target = ctl.newest_target()
            line = f"lifecycle: {state}"
            if target is not None:
                line += (f"; tracker: {STATE_LABEL.get(target.state, target.state)} box=[{target.x:.1f}, {target.y:.1f},"
                         f" {target.width:.1f}, {target.height:.1f}] stage={target.stages_run}/{target.num_stages} "
                         f"score={target.score:.2f}")
            print(line)
            return 0
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


def main(argv=None):
    args = parse_args(argv)
    try:
        sys.exit(run(args))
    except ConnectionError as exc:
        print(f"dytrack-ctl: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
