"""REST API of serving: `POST /api/v1/predict/`."""

import uuid

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import DomainError, ValidationFailed
from config.pagination import MAX_INTEGER
from config.parsers import BoundedJSONParser
from projects.authentication import ApiTokenAuthentication
from projects.permissions import IsProjectAdmin, IsProjectReviewer, ProjectApiMixin
from serving.authentication import ApiClientAuthentication, ApiClientMayPredict, ApiClientRateThrottle
from serving.launch import preannotation_start, prediction_job_start
from serving.models import DriftReport, PredictionJob
from serving.selectors import drift_alerts_current, serving_metrics
from serving.services import (
    Caller,
    prediction_job_get,
    prediction_make,
    prediction_refused_log,
    prediction_summary,
    uncertain_images_send,
)
from serving.state import ClientScope


class PredictInputSerializer(serializers.Serializer):
    image = serializers.FileField(required=False, help_text="A JPEG, PNG or WebP (multipart).")
    image_id = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_INTEGER, help_text="A stored image of a project you may use."
    )
    project = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_INTEGER, help_text="Whose champion and rules, for an upload."
    )
    model = serializers.CharField(
        required=False, default="champion", max_length=20, help_text="A model version id, or champion."
    )
    conf = serializers.FloatField(required=False, default=0.25, min_value=0.0, max_value=1.0)
    iou = serializers.FloatField(required=False, default=0.7, min_value=0.01, max_value=1.0)


class PredictionBoxSerializer(serializers.Serializer):
    x1 = serializers.FloatField()
    y1 = serializers.FloatField()
    x2 = serializers.FloatField()
    y2 = serializers.FloatField()
    score = serializers.FloatField()
    label = serializers.CharField()


class PredictionSerializer(serializers.Serializer):
    request_id = serializers.CharField()
    model = serializers.DictField(
        help_text="id, number, project, architecture, imgsz, runtime (e.g. onnxruntime CUDAExecutionProvider)"
    )
    rule = serializers.DictField(allow_null=True, help_text="The routing rule that chose the model (id, name).")
    artifact = serializers.DictField(
        help_text="The file that answered: sha256, and the deployment target and build when a rule named one."
    )
    chosen_by = serializers.CharField(help_text="request (a model id was sent), rule, or champion.")
    is_canary = serializers.BooleanField()
    image = serializers.DictField(help_text="width and height of the upright image, pixels")
    boxes = PredictionBoxSerializer(many=True)
    latency_ms = serializers.FloatField()


class PredictApi(APIView):
    """Boxes for one image (multipart `image`, or `image_id`) from a model version (`model`:
    an id, or `champion`, the default, through the project's routing rules). Boxes are in
    the upright image's pixels. API clients send `Authorization: Bearer <token>`."""

    authentication_classes = [ApiClientAuthentication, ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, ApiClientMayPredict]
    throttle_classes = [ApiClientRateThrottle]
    parser_classes = [MultiPartParser, FormParser, BoundedJSONParser]

    def throttled(self, request: Request, wait: float) -> None:
        prediction_refused_log(caller=_caller(request), request_id=str(uuid.uuid4()), status=429, code="throttled")
        super().throttled(request, wait)

    def permission_denied(self, request: Request, message=None, code=None) -> None:
        if isinstance(request.auth, ClientScope):  # a client that may not predict: logged as refused
            prediction_refused_log(
                caller=_caller(request), request_id=str(uuid.uuid4()), status=403, code="not_allowed"
            )
        super().permission_denied(request, message=message, code=code)

    @extend_schema(request=PredictInputSerializer, responses=PredictionSerializer)
    def post(self, request: Request) -> Response:
        caller = _caller(request)
        request_id = str(uuid.uuid4())
        try:
            content_length = int(request.META.get("CONTENT_LENGTH") or 0)
            if content_length > settings.QUORUM_PREDICT_MAX_BYTES:
                raise TooLarge(f"The request is over {settings.QUORUM_PREDICT_MAX_BYTES} bytes.")
            data = PredictInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            upload = values.get("image")
            if upload is not None and upload.size == 0:
                raise ParseError("The image file is empty.")
            prediction = prediction_make(
                caller=caller,
                upload=upload,
                image_id=values.get("image_id"),
                project_id=values.get("project"),
                model=values.get("model"),
                conf=values["conf"],
                iou=values["iou"],
                request_id=request_id,
            )
        except (DomainError, APIException, Http404) as error:
            status = getattr(error, "status_code", 404)
            code = getattr(error, "code", None) or getattr(error, "default_code", "not_found")
            hints = _hints(request)
            prediction_refused_log(caller=caller, request_id=request_id, status=status, code=str(code), **hints)
            raise
        return Response(prediction_summary(prediction))


class PredictBatchInputSerializer(serializers.Serializer):
    image_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_INTEGER), min_length=1, max_length=1000
    )
    model = serializers.CharField(required=False, default="champion", max_length=20)
    conf = serializers.FloatField(required=False, default=0.25, min_value=0.0, max_value=1.0)
    iou = serializers.FloatField(required=False, default=0.7, min_value=0.01, max_value=1.0)


class PredictionJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = PredictionJob
        fields = ["id", "state", "image_ids", "model", "conf", "iou", "done", "results", "error", "created_at",
                  "finished_at"]  # fmt: skip


class PredictBatchApi(APIView):
    """Queue many stored images for prediction on the `inference` queue; 202 with the job to poll."""

    authentication_classes = PredictApi.authentication_classes
    permission_classes = [IsAuthenticated, ApiClientMayPredict]
    throttle_classes = [ApiClientRateThrottle]
    rate_counts_field = "image_ids"  # each image of the batch counts toward the client's limit

    @extend_schema(request=PredictBatchInputSerializer, responses={202: PredictionJobSerializer})
    def post(self, request: Request) -> Response:
        data = PredictBatchInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = prediction_job_start(caller=_caller(request), **data.validated_data)
        return Response(PredictionJobSerializer(job).data, status=202)


class PredictionJobApi(APIView):
    """One batch job of the caller: its state, progress and, when done, one answer per image."""

    authentication_classes = PredictApi.authentication_classes
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=PredictionJobSerializer)
    def get(self, request: Request, job_id: int) -> Response:
        return Response(PredictionJobSerializer(prediction_job_get(job_id=job_id, caller=_caller(request))).data)


def _caller(request: Request) -> Caller:
    if isinstance(request.auth, ClientScope):
        return Caller(client=request.auth.client, client_scope=request.auth)
    return Caller(user=request.user)


def _hints(request: Request) -> dict:
    """The project or image a refused request named, if its body could be read at all."""
    try:
        data = request.data
    except APIException:
        return {}
    if not hasattr(data, "get"):  # a JSON list or scalar
        return {}
    return {"project_id": data.get("project"), "image_id": data.get("image_id")}


class TooLarge(APIException):
    status_code = 413
    default_code = "too_large"


class ServingMetricsApi(ProjectApiMixin, APIView):
    """Requests, latency p50/p95/p99 and errors of a project's prediction API over the last
    `minutes` (default 60, at most 1440), in total, per model version, per client and per minute."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(
        parameters=[OpenApiParameter("project", int, required=True), OpenApiParameter("minutes", int)],
        responses={200: dict},
    )
    def get(self, request: Request) -> Response:
        project = self.project_for(request, _int_param(request, "project", required=True))
        minutes = _int_param(request, "minutes") or 60
        if not 1 <= minutes <= 1440:
            raise ValidationFailed("minutes is between 1 and 1440.", fields={"minutes": ["1 to 1440."]})
        return Response(serving_metrics(project=project, minutes=minutes))


class DriftApi(ProjectApiMixin, APIView):
    """The latest drift reports of a project's models, newest first, with their alerts and
    each camera's (API client's) own figures: typical size, share under half the training
    pixels, PSI per feature."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(parameters=[OpenApiParameter("project", int, required=True)], responses={200: dict})
    def get(self, request: Request) -> Response:
        project = self.project_for(request, _int_param(request, "project", required=True))
        reports = DriftReport.objects.filter(project=project).select_related("model")[:20]
        return Response(
            {
                "alerts": drift_alerts_current(project=project),
                "reports": [
                    {
                        "id": report.pk, "model": report.model.number, "window_start": report.window_start,
                        "window_end": report.window_end, "predictions": report.predictions, "psi": report.psi,
                        "summary": report.summary, "alerts": report.alerts, "clients": report.clients,
                        "created_at": report.created_at,
                    }
                    for report in reports
                ],
            }
        )  # fmt: skip


def _int_param(request: Request, name: str, *, required: bool = False) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        if required:
            raise ValidationFailed(f"{name} is required.", fields={name: ["Required."]})
        return None
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed(f"{name} must be a whole number.", fields={name: ["A whole number."]}) from None


class UncertainSendInputSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=1000, default=20)
    by = serializers.ChoiceField(choices=["confidence", "drift"], default="confidence")


class UncertainImagesApi(ProjectApiMixin, APIView):
    """Send the served images the models were least sure of (or the most drifted) to the
    project's annotation queue, first in line (reviewers and admins)."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(request=UncertainSendInputSerializer, responses={200: dict})
    def post(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        data = UncertainSendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(uncertain_images_send(project=project, user=request.user, **data.validated_data))


class PreannotateApi(ProjectApiMixin, APIView):
    """Have the champion suggest boxes for the project's images that still need annotators
    (admins; a worker on the `inference` queue does it). The canvas shows them only where
    the project allows suggestions."""

    permission_classes = [IsAuthenticated, IsProjectAdmin]

    @extend_schema(request=None, responses={202: dict})
    def post(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        return Response(
            {"images": preannotation_start(project=project), "shown": project.allow_suggestions}, status=202
        )
