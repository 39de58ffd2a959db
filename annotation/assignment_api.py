"""REST API of an annotator's work: next task, the task, drafts, submit, skip, the image."""

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.assignments import (
    assignment_draft_save,
    assignment_get,
    assignment_lease_ahead,
    assignment_lease_next,
    assignment_skip,
    assignment_submit,
)
from annotation.models import Assignment, Suggestion
from config.errors import DomainError
from config.media import MEDIA_RESPONSES, media_response
from config.parsers import BoundedJSONField
from datasets.imaging import stored_file_open
from projects.permissions import IsProjectAnnotator, ProjectApiMixin


class PreconditionRequired(DomainError):
    status_code = 428
    code = "precondition_required"


class AssignmentOutputSerializer(serializers.Serializer):
    """What an annotator sees of a task: never the split, nor how many others work on it."""

    id = serializers.IntegerField()
    project = serializers.IntegerField(source="image.project_id")
    image_url = serializers.SerializerMethodField()
    width = serializers.IntegerField(source="image.width")
    height = serializers.IntegerField(source="image.height")
    labels = serializers.ListField(source="image.project.labels", child=serializers.CharField())
    state = serializers.CharField()
    version = serializers.IntegerField()
    draft = serializers.JSONField()
    active_seconds = serializers.FloatField()
    lease_expires_at = serializers.DateTimeField()
    annotation = serializers.IntegerField(source="annotation_id", allow_null=True)
    suggestions = serializers.SerializerMethodField()

    def get_suggestions(self, assignment: Assignment) -> list[dict]:
        """A model's boxes for the image, only where the project allows suggestions (off by
        default: the panel stays blind)."""
        if not assignment.image.project.allow_suggestions:
            return []
        suggestion = Suggestion.objects.filter(image_id=assignment.image_id).first()
        return suggestion.boxes if suggestion else []

    def get_image_url(self, assignment: Assignment) -> str:
        return reverse("api-assignment-image", kwargs={"assignment_id": assignment.pk})


class BoxesInputSerializer(serializers.Serializer):
    boxes = BoundedJSONField(help_text="[{x1, y1, x2, y2, label, is_occluded, is_truncated, is_ignored}]")
    active_seconds = serializers.FloatField(required=False, min_value=0, max_value=86_400)


class SkipInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class SubmitOutputSerializer(serializers.Serializer):
    annotation = serializers.IntegerField()
    revision = serializers.IntegerField()
    boxes = serializers.IntegerField()
    next_task = serializers.CharField()


class NextTaskApi(ProjectApiMixin, APIView):
    permission_classes = [IsAuthenticated, IsProjectAnnotator]

    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter(
                "ahead", bool, description="Lease the task after the one you are on (the canvas loads its image early)."
            )
        ],
        responses={200: AssignmentOutputSerializer, 204: None},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        if request.query_params.get("ahead") in ("1", "true"):
            assignment = assignment_lease_ahead(project=project, user=request.user)
        else:
            assignment = assignment_lease_next(project=project, user=request.user)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(AssignmentOutputSerializer(assignment).data)


class AssignmentDetailApi(APIView):
    @extend_schema(responses=AssignmentOutputSerializer)
    def get(self, request: Request, assignment_id: int) -> Response:
        return Response(AssignmentOutputSerializer(assignment_get(assignment_id=assignment_id, user=request.user)).data)


class AssignmentDraftApi(APIView):
    @extend_schema(
        request=BoxesInputSerializer,
        parameters=[OpenApiParameter("If-Match", location="header", required=True, description="the task's version")],
        responses={200: AssignmentOutputSerializer},
    )
    def put(self, request: Request, assignment_id: int) -> Response:
        assignment = assignment_get(assignment_id=assignment_id, user=request.user)
        header = request.headers.get("If-Match", "").strip().strip('"').removeprefix("W/").strip('"')
        if not header:
            raise PreconditionRequired("Send If-Match with the version you last saw.")
        if not header.isdigit():
            raise ValidationError({"If-Match": ["Must be the task's version number."]})
        serializer = BoxesInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        saved = assignment_draft_save(
            assignment=assignment,
            boxes=serializer.validated_data["boxes"],
            expected_version=int(header),
            active_seconds=serializer.validated_data.get("active_seconds"),
        )
        response = Response(AssignmentOutputSerializer(saved).data)
        response["ETag"] = f'"{saved.version}"'
        return response


class AssignmentSubmitApi(APIView):
    @extend_schema(request=BoxesInputSerializer, responses={201: SubmitOutputSerializer, 200: SubmitOutputSerializer})
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = assignment_get(assignment_id=assignment_id, user=request.user)
        was_submitted = assignment.annotation_id is not None
        serializer = BoxesInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        annotation = assignment_submit(
            assignment=assignment,
            boxes=serializer.validated_data["boxes"],
            active_seconds=serializer.validated_data.get("active_seconds"),
        )
        body = {
            "annotation": annotation.pk,
            "revision": annotation.revision,
            "boxes": annotation.boxes.count(),
            "next_task": reverse("api-next-task", kwargs={"project_id": assignment.image.project_id}),
        }
        return Response(body, status=status.HTTP_200_OK if was_submitted else status.HTTP_201_CREATED)


class AssignmentSkipApi(APIView):
    @extend_schema(request=SkipInputSerializer, responses=AssignmentOutputSerializer)
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = assignment_get(assignment_id=assignment_id, user=request.user)
        serializer = SkipInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        skipped = assignment_skip(assignment=assignment, reason=serializer.validated_data["reason"])
        return Response(AssignmentOutputSerializer(skipped).data)


class AssignmentImageApi(APIView):
    """The task's image, for the annotator who holds the task only, named after the task. On
    S3 a redirect to a presigned URL: its object key shows, and does not name the content
    (datasets.models.media_key)."""

    @extend_schema(responses=MEDIA_RESPONSES)
    def get(self, request: Request, assignment_id: int) -> HttpResponse:
        assignment = assignment_get(assignment_id=assignment_id, user=request.user)
        image = assignment.image
        extension = "jpg" if image.format == "jpeg" else image.format
        return media_response(
            image.file,
            open_file=stored_file_open,
            content_type=f"image/{image.format}",
            filename=f"task-{assignment.pk}.{extension}",
            cache_seconds=3600,
        )
