"""REST API of imports and exports of boxes."""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.parsers import BoundedJSONField
from groundtruth.models import AnnotationKind, ConsensusVersion, VersionState
from projects.models import Membership
from projects.permissions import IsProjectAdmin, IsProjectReviewer, ProjectApiMixin
from transfer.exports import (
    DEFAULT_IMAGE_ROOT,
    PANEL,
    SUGGESTIONS,
    VERSION,
    YOLO_LAYOUTS,
    ExportSource,
    export_coco,
    export_cvat,
    export_labelstudio,
    export_voc,
    export_yolo,
)
from transfer.imports import FORMATS, PREDICTIONS, TARGETS, annotations_import, import_dataset_read


class ImportInputSerializer(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=FORMATS)
    target = serializers.ChoiceField(choices=TARGETS, default="annotator")
    annotator = serializers.CharField(
        required=False, max_length=150, help_text="username: one annotator credited with everything in the file"
    )
    annotator_map = BoundedJSONField(
        required=False,
        binary=True,
        help_text='JSON object: an author\'s id or email in the export -> a Quorum username, e.g. {"7": "anna"}',
    )
    predictions = serializers.ChoiceField(
        choices=PREDICTIONS, default="ignore", help_text="a Label Studio export's predictions: ignored, or suggestions"
    )
    voc_origin = serializers.ChoiceField(
        choices=[0, 1], required=False, help_text="VOC's first pixel: 1 (the devkit's) or 0; unset: seen from the file"
    )
    clip = serializers.BooleanField(default=False, help_text="clip boxes to the image instead of refusing them")

    def validate_annotator_map(self, value):
        if not isinstance(value, dict) or len(value) > 10_000:
            raise serializers.ValidationError("A JSON object of at most 10,000 authors.")
        bad = [
            key
            for key, username in value.items()
            if not isinstance(username, str) or not 0 < len(username) <= 150 or len(key) > 254
        ]
        if bad:
            raise serializers.ValidationError(f"Each value must be a username; not for {', '.join(map(str, bad[:5]))}.")
        return value


class PerAnnotatorSerializer(serializers.Serializer):
    submissions = serializers.IntegerField(required=False)
    gold = serializers.IntegerField(required=False)
    boxes = serializers.IntegerField(required=False)
    skips = serializers.IntegerField(required=False)


class MatchSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="the image's name in the export")
    image_id = serializers.IntegerField()
    by = serializers.ChoiceField(choices=["exact", "tool_prefix", "file_name", "sha256"])


class ImportSummarySerializer(serializers.Serializer):
    format = serializers.CharField()
    target = serializers.CharField()
    annotator = serializers.CharField(
        help_text="the one annotator named for everything; empty when authors were mapped"
    )
    images = serializers.IntegerField()
    boxes = serializers.IntegerField()
    revised = serializers.IntegerField()
    skips = serializers.IntegerField(help_text="cancelled annotations recorded as skips")
    not_labelled = serializers.IntegerField(help_text="images in the export nobody labelled: not imported")
    predictions = serializers.IntegerField(help_text="models' predictions in the export")
    suggestions = serializers.IntegerField(help_text="predictions written as suggestions")
    per_annotator = serializers.DictField(child=PerAnnotatorSerializer())
    matched = serializers.DictField(child=serializers.IntegerField(), help_text="how images were found -> count")
    matches = MatchSerializer(many=True)
    voc_origin = serializers.IntegerField(allow_null=True)
    left_out = serializers.DictField(child=serializers.IntegerField(), help_text="shapes that are not boxes, by kind")


class ProjectImportApi(ProjectApiMixin, APIView):
    """Import boxes as their authors' (or one annotator's) submissions or as gold; all or nothing."""

    parser_classes = [MultiPartParser]
    permission_classes = [IsAuthenticated, IsProjectAdmin]

    @extend_schema(request={"multipart/form-data": ImportInputSerializer}, responses={201: ImportSummarySerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        serializer = ImportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data["file"]
        read = import_dataset_read(
            project=project,
            fmt=data["format"],
            upload=upload,
            upload_name=upload.name,
            size=upload.size,
            voc_origin=data.get("voc_origin"),
        )
        summary = annotations_import(
            project=project,
            source=read,
            target=data["target"],
            annotator_username=data.get("annotator"),
            annotator_map=data.get("annotator_map"),
            predictions=data["predictions"],
            clip=data["clip"],
            importer=request.user,
            fmt=data["format"],
        )
        return Response(ImportSummarySerializer(summary).data, status=status.HTTP_201_CREATED)


EXPORTERS = {
    "coco": (export_coco, "application/json", "json"),
    "yolo": (export_yolo, "application/zip", "zip"),
    "voc": (export_voc, "application/zip", "zip"),
    "labelstudio": (export_labelstudio, "application/json", "json"),
    "cvat": (export_cvat, "application/xml", "xml"),
}
LABEL_STUDIO_ONLY = (PANEL, SUGGESTIONS)


class ProjectExportApi(ProjectApiMixin, APIView):
    """Stream the project's boxes from one source as COCO JSON, a YOLO dataset, Pascal VOC,
    Label Studio JSON or CVAT for images XML."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(
        parameters=[
            OpenApiParameter("format", enum=list(EXPORTERS), required=True),
            OpenApiParameter(
                "source",
                description="'gold', or 'annotator' with annotator=<username>; for labelstudio also 'panel' (every "
                "annotator's submissions) and 'suggestions' (the models' boxes, as predictions)",
                default="gold",
            ),
            OpenApiParameter("annotator", description="username, with source=annotator"),
            OpenApiParameter("version", int, description="a consensus version's number: its ground truth"),
            OpenApiParameter("layout", enum=list(YOLO_LAYOUTS), description="yolo: images/<split>/ or flat images/"),
            OpenApiParameter(
                "image_root", description=f"labelstudio: what data.image starts with (default {DEFAULT_IMAGE_ROOT})"
            ),
        ],
        # COCO is an object, Label Studio a list of tasks: either JSON
        responses={
            (200, "application/json"): OpenApiTypes.ANY,
            (200, "application/zip"): bytes,
            (200, "application/xml"): str,
        },
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
        elif source_name in LABEL_STUDIO_ONLY:
            if fmt != "labelstudio":
                raise ValidationError({"source": [f"source={source_name} is for format=labelstudio only."]})
            source = ExportSource(kind=source_name)
        elif source_name == "annotator":
            username = request.query_params.get("annotator", "")
            membership = Membership.objects.filter(project=project, user__username=username).first()
            if membership is None:
                raise ValidationError({"annotator": [f"{username!r} is not a member of this project."]})
            source = ExportSource(kind=AnnotationKind.SUBMISSION, annotator_id=membership.user_id)
        else:
            raise ValidationError({"source": ["Must be 'gold', 'annotator', 'panel' or 'suggestions'."]})
        exporter, content_type, extension = EXPORTERS[fmt]
        options = {}
        if fmt == "yolo":
            options["layout"] = request.query_params.get("layout", "splits")
            if options["layout"] not in YOLO_LAYOUTS:
                raise ValidationError({"layout": [f"Must be one of {', '.join(YOLO_LAYOUTS)}."]})
        if fmt == "labelstudio":
            options["image_root"] = request.query_params.get("image_root", DEFAULT_IMAGE_ROOT)
            if len(options["image_root"]) > 1000:
                raise ValidationError({"image_root": ["At most 1,000 characters."]})
        pieces = exporter(project=project, source=source, **options)
        response = StreamingHttpResponse(
            (piece.encode() if isinstance(piece, str) else piece for piece in pieces), content_type=content_type
        )
        filename = f"quorum-project-{project.pk}-{source_name}-{fmt}.{extension}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


def _version_source(project, number: str) -> ExportSource:
    """The ground truth of the project's finished consensus version `number` (400 otherwise)."""
    version = ConsensusVersion.objects.filter(project=project, number=int(number)).first() if number.isdigit() else None
    if version is None:
        raise ValidationError({"version": [f"This project has no consensus version {number!r}."]})
    if version.state != VersionState.DONE:
        raise ValidationError({"version": [f"Version {version.number} is {version.state}, not done."]})
    return ExportSource(kind=VERSION, version_id=version.pk, version_number=version.number)
