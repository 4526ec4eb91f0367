"""A service served from its own thread, so that a call that waits (for the worker to apply a box) never holds up the
node's executor. rclpy offers two other ways, both measured here and dropped: a multi-threaded executor (on 2 cores it
starved the tracker worker: frames went untracked under load) and a coroutine callback (this rclpy re-runs a waiting
task in a loop before it looks at the wait set again, so images stopped while a call waited)."""
from __future__ import annotations

import threading

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor


class ServiceThread:
    """Serve `name` (a fully qualified service name) with `callback` from a helper node spun in its own thread."""

    def __init__(self, node, srv_type, name: str, callback):
        # no global arguments: a launch's `-r __node:=dytrack_tracker` would rename the helper too, leaving two
        # nodes of one name in the graph (the service's name is fully qualified, so no remap is needed)
        self.helper = rclpy.create_node(f"{node.get_name()}_services", namespace=node.get_namespace(),
                                        context=node.context, start_parameter_services=False,
                                        use_global_arguments=False)
        self.helper.create_service(srv_type, name, callback)
        self.executor = SingleThreadedExecutor(context=node.context)
        self.executor.add_node(self.helper)
        self.thread = threading.Thread(target=self._spin, name=f"{name} service", daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except (ExternalShutdownException, rclpy.executors.ShutdownException):
            pass
        except Exception:        # the context went away under it (shutdown by a signal): nothing left to serve
            if rclpy.ok(context=self.helper.context):
                raise

    def stop(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.thread.join(timeout=2.0)
        self.helper.destroy_node()
