from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"

    def ready(self) -> None:
        """The leases live, offered to the metrics endpoint (ops sits below this app: ops/metrics.py)."""
        from annotation.selectors import assignment_leases_live
        from ops.metrics import state_gauge_register

        state_gauge_register(
            name="quorum_assignment_leases_live",
            documentation="Annotation leases held now: leased, not yet submitted, skipped or expired.",
            read=lambda: {(): assignment_leases_live()},
        )
