"""Work sent to the inference workers: a batch prediction job, or a pre-annotation of a
project's images, checked by serving/services.py and sent to its task after commit."""

from django.db import transaction

from config.celery import send_quietly
from projects.models import Project
from serving.models import PredictionJob
from serving.services import preannotation_request, prediction_job_create
from serving.tasks import preannotation_run_task, prediction_job_run_task


def prediction_job_start(**fields) -> PredictionJob:
    """A job made by `prediction_job_create(**fields)`, sent to a worker once committed."""
    job = prediction_job_create(**fields)
    transaction.on_commit(lambda: send_quietly(prediction_job_run_task, job.pk))
    return job


def preannotation_start(*, project: Project) -> int:
    """The champion's pre-annotation of `project`, sent to a worker once committed; how many
    images it will look at."""
    count = preannotation_request(project=project)
    transaction.on_commit(lambda: send_quietly(preannotation_run_task, project.pk))
    return count
