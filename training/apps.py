from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"

    def ready(self) -> None:
        """The training runs by state, offered to the metrics endpoint (ops sits below this
        app: ops/metrics.py)."""
        from ops.metrics import state_gauge_register
        from training.selectors import training_runs_by_state

        state_gauge_register(
            name="quorum_training_runs",
            documentation="Training runs in each state (queued, running, succeeded, failed, cancelled).",
            labels=("state",),
            read=lambda: {(state,): count for state, count in training_runs_by_state().items()},
        )
