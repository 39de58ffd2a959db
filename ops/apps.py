from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        """Celery's task and worker signals feed the task metrics (ops/metrics.py)."""
        from celery.signals import task_postrun, task_prerun, worker_init, worker_process_shutdown, worker_ready

        from ops import metrics

        task_prerun.connect(metrics.task_started, dispatch_uid="ops-metrics-task-prerun", weak=False)
        task_postrun.connect(metrics.task_finished, dispatch_uid="ops-metrics-task-postrun", weak=False)
        worker_init.connect(metrics.worker_started, dispatch_uid="ops-metrics-worker-init", weak=False)
        worker_process_shutdown.connect(
            metrics.worker_process_stopped, dispatch_uid="ops-metrics-process-shutdown", weak=False
        )
        worker_ready.connect(metrics.worker_ready, dispatch_uid="ops-metrics-worker-ready", weak=False)
