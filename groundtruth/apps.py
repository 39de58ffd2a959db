from django.apps import AppConfig


class GroundtruthConfig(AppConfig):
    name = "groundtruth"

    def ready(self) -> None:
        """The images waiting for consensus, offered to the metrics endpoint (ops sits below
        this app: ops/metrics.py)."""
        from groundtruth.selectors import images_waiting_for_consensus
        from ops.metrics import state_gauge_register

        state_gauge_register(
            name="quorum_images_waiting_for_consensus",
            documentation="Images with their k panel submissions and no result in their project's current consensus "
            "version, by reason (no_current_version, not_in_current_version).",
            labels=("reason",),
            read=lambda: {(reason,): count for reason, count in images_waiting_for_consensus().items()},
        )
