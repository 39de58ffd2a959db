"""REST API of imports and exports of boxes."""

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.exports import VERSION, ExportSource, export_coco, export_voc, export_yolo
from annotation.imports import FORMATS, TARGETS, annotations_import, import_dataset_read
from annotation.models import AnnotationKind, Membership
from annotation.permissions import IsProjectAdmin, IsProjectReviewer, ProjectApiMixin


class ImportInputSerializer(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=FORMATS)
    target = serializers.ChoiceField(choices=TARGETS, default="annotator")
    annotator = serializers.CharField(required=False, max_length=150, help_text="username, when target is 'annotator'")
    clip = serializers.BooleanField(default=False, help_text="clip boxes to the image instead of refusing them")


class ImportSummarySerializer(serializers.Serializer):
    format = serializers.CharField()
    target = serializers.CharField()
    annotator = serializers.CharField()
    images = serializers.IntegerField()
    boxes = serializers.IntegerField()
    revised = serializers.IntegerField()


class ProjectImportApi(ProjectApiMixin, APIView):
    """Import boxes as one annotator's submissions or as gold references; all or nothing."""

    parser_classes = [MultiPartParser]
    permission_classes = [IsAuthenticated, IsProjectAdmin]

    @extend_schema(request={"multipart/form-data": ImportInputSerializer}, responses={201: ImportSummarySerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        serializer = ImportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data["file"]
        dataset = import_dataset_read(
            project=project,
            fmt=data["format"],
            upload=upload,
            upload_name=upload.name,
            size=upload.size,
            clip=data["clip"],
        )
        summary = annotations_import(
            project=project,
            dataset=dataset,
            target=data["target"],
            annotator_username=data.get("annotator"),
            importer=request.user,
            fmt=data["format"],
        )
        return Response(ImportSummarySerializer(summary).data, status=status.HTTP_201_CREATED)


EXPORTERS = {
    "coco": (export_coco, "application/json", "json"),
    "yolo": (export_yolo, "application/zip", "zip"),
    "voc": (export_voc, "application/zip", "zip"),
}


class ProjectExportApi(ProjectApiMixin, APIView):
    """Stream the project's boxes from one source as COCO JSON, a YOLO dataset or Pascal VOC."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(
        parameters=[
            OpenApiParameter("format", enum=list(EXPORTERS), required=True),
            OpenApiParameter("source", description="'gold', or 'annotator' with annotator=<username>", default="gold"),
            OpenApiParameter("annotator", description="username, with source=annotator"),
            OpenApiParameter("version", int, description="a consensus version's number: its ground truth"),
        ],
        responses={(200, "application/json"): dict, (200, "application/zip"): bytes},
    )
    def get(self, request: Request, project_id: int) -> StreamingHttpResponse:
        project = self.project_for(request, project_id)
        fmt = request.query_params.get("format", "")
        if fmt not in EXPORTERS:
            raise ValidationError({"format": [f"Must be one of {', '.join(EXPORTERS)}."]})
        source_name = request.query_params.get("source", "gold")
        if "version" in request.query_params:
            source_name = f"v{request.query_params['version']}"
            source = _version_source(project, request.query_params["version"])
        elif source_name == "gold":
            source = ExportSource(kind=AnnotationKind.GOLD)
        elif source_name == "annotator":
            username = request.query_params.get("annotator", "")
            membership = Membership.objects.filter(project=project, user__username=username).first()
            if membership is None:
                raise ValidationError({"annotator": [f"{username!r} is not a member of this project."]})
            source = ExportSource(kind=AnnotationKind.SUBMISSION, annotator_id=membership.user_id)
        else:
            raise ValidationError({"source": ["Must be 'gold' or 'annotator'."]})
        exporter, content_type, extension = EXPORTERS[fmt]
        response = StreamingHttpResponse(
            (piece.encode() if isinstance(piece, str) else piece for piece in exporter(project=project, source=source)),
            content_type=content_type,
        )
        filename = f"quorum-project-{project.pk}-{source_name}-{fmt}.{extension}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


def _version_source(project, number: str) -> ExportSource:
    """The ground truth of the project's finished consensus version `number` (400 otherwise)."""
    from groundtruth.models import ConsensusVersion, VersionState

    version = ConsensusVersion.objects.filter(project=project, number=int(number)).first() if number.isdigit() else None
    if version is None:
        raise ValidationError({"version": [f"This project has no consensus version {number!r}."]})
    if version.state != VersionState.DONE:
        raise ValidationError({"version": [f"Version {version.number} is {version.state}, not done."]})
    return ExportSource(kind=VERSION, version_id=version.pk, version_number=version.number)
