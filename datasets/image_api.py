"""REST API of a project's images: upload, list, read, and the stored files."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_docs import PAGE_PARAMETERS, paginated
from config.errors import DATABASE_RETRY_SECONDS, error_body
from config.media import MEDIA_RESPONSES, media_response
from config.pagination import Pagination
from datasets.imaging import stored_file_open
from datasets.ingest import IncomingImage, IngestResult, image_ingest, zip_ingest
from datasets.selectors import image_get, image_list
from datasets.serializers import (
    ImageOutputSerializer,
    ImageUploadSerializer,
    IngestReportSerializer,
    SplitReportSerializer,
    ZipUploadSerializer,
)
from datasets.splits import split_report
from projects.models import Split
from projects.permissions import IsProjectAdmin, IsProjectReviewer, ProjectApiMixin


def ingest_response(results: list[IngestResult]) -> Response:
    """One result per file; 201 when any was stored, 200 when the rest were duplicates, and
    the first refusal's status (400, 413, 415) when every file was refused."""
    counts = {
        "stored": sum(result.status == "stored" for result in results),
        "duplicates": sum(result.status == "duplicate" for result in results),
        "refused": sum(result.status == "refused" for result in results),
    }
    body = IngestReportSerializer({**counts, "results": results}).data
    if counts["stored"]:
        return Response(body, status=status.HTTP_201_CREATED)
    if counts["duplicates"]:
        return Response(body, status=status.HTTP_200_OK)
    first = next(result for result in results if result.status == "refused")
    plural = "" if len(results) == 1 else f" ({len(results)} files, none stored)"
    error = error_body(status_code=first.http_status, code=first.code, message=f"{first.message}{plural}")
    response = Response({**error, **body}, status=first.http_status)
    if first.http_status == 503:
        response["Retry-After"] = str(DATABASE_RETRY_SECONDS)
    return response


class ProjectImagesApi(ProjectApiMixin, APIView):
    parser_classes = [MultiPartParser]

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated(), IsProjectAdmin()]
        return [IsAuthenticated(), IsProjectReviewer()]

    @extend_schema(
        parameters=[
            OpenApiParameter("split", enum=Split.values),
            OpenApiParameter("condition", description="dimension:value, repeatable", many=True),
            *PAGE_PARAMETERS,
        ],
        responses=paginated(ImageOutputSerializer, "ImagePage"),
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        split = request.query_params.get("split")
        if split and split not in Split.values:
            raise ValidationError({"split": [f"Must be one of {', '.join(Split.values)}."]})
        conditions = {}
        for item in request.query_params.getlist("condition"):
            dimension, _, value = item.partition(":")
            if not value:
                raise ValidationError({"condition": ["Use dimension:value, e.g. weather:rain."]})
            conditions[dimension] = value
        paginator = Pagination()
        page = paginator.paginate_queryset(
            image_list(project=project, split=split, conditions=conditions), request, self
        )
        return paginator.get_paginated_response(ImageOutputSerializer(page, many=True).data)

    @extend_schema(request={"multipart/form-data": ImageUploadSerializer}, responses={201: IngestReportSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        serializer = ImageUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        shared = serializer.validated_data["conditions"]
        per_file = serializer.validated_data["file_conditions"]
        uploads = [
            IncomingImage(
                name=uploaded.name,
                file=uploaded,
                size=uploaded.size,
                conditions={**shared, **per_file.get(uploaded.name, {})},
            )
            for uploaded in serializer.validated_data["files"]
        ]
        return ingest_response(image_ingest(project=project, uploads=uploads, user=request.user))


class ProjectImagesZipApi(ProjectApiMixin, APIView):
    """Upload a zip archive of images: one result per entry (see `zip_ingest` for the limits)."""

    parser_classes = [MultiPartParser]
    permission_classes = [IsAuthenticated, IsProjectAdmin]

    @extend_schema(request={"multipart/form-data": ZipUploadSerializer}, responses={201: IngestReportSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        serializer = ZipUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        archive = serializer.validated_data["archive"]
        results = zip_ingest(
            project=project,
            archive=archive,
            archive_size=archive.size,
            conditions=serializer.validated_data["conditions"],
            user=request.user,
        )
        if not results:
            body = error_body(status_code=400, code="no_images", message="The archive holds no image files.")
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return ingest_response(results)


class ImageDetailApi(APIView):
    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(responses=ImageOutputSerializer)
    def get(self, request: Request, image_id: int) -> Response:
        image = image_get(image_id=image_id, user=request.user)
        self.check_object_permissions(request, image)
        return Response(ImageOutputSerializer(image).data)


class ImageFileApi(APIView):
    """The stored image (upright, without EXIF) or its thumbnail."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]
    variant = "file"

    @extend_schema(responses=MEDIA_RESPONSES)
    def get(self, request: Request, image_id: int) -> HttpResponse:
        image = image_get(image_id=image_id, user=request.user)
        self.check_object_permissions(request, image)
        stored = getattr(image, self.variant)
        if not stored:
            raise NotFound("The thumbnail is not made yet.")
        return media_response(
            stored, open_file=stored_file_open, content_type=_content_type(stored.name), cache_seconds=86400
        )


def _content_type(name: str) -> str:
    extension = name.rsplit(".", 1)[-1].lower()
    return {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}[extension]


class SplitReportApi(ProjectApiMixin, APIView):
    """Images per split and per split x condition, resolutions per split, and warnings."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(responses=SplitReportSerializer)
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        return Response(SplitReportSerializer(split_report(project=project)).data)
