"""REST API of consensus versions (reviewers and admins of the project)."""

import csv
import io
import json

from django.contrib.auth import get_user_model
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_docs import PAGE_PARAMETERS, paginated
from config.errors import Conflict, ValidationFailed
from config.pagination import Pagination
from config.parsers import BoundedJSONField
from datasets.selectors import image_get
from groundtruth.models import AgreementReport, ConsensusVersion
from groundtruth.selectors import (
    adjudication_view,
    chunk_progress,
    consensus_version_get,
    consensus_versions,
    gold_paused,
    gold_scores,
    image_state_counts,
    my_figures,
    review_queue,
    suggestion_bias,
)
from groundtruth.services import (
    adjudication_save,
    adjudication_undo,
    consensus_version_create,
    gold_pause_clear,
    gold_set,
    gold_unset,
)
from projects.permissions import IsProjectAnnotator, IsProjectReviewer, ProjectApiMixin


class ConsensusInputSerializer(serializers.Serializer):
    iou_threshold = serializers.FloatField(default=0.5, min_value=0.05, max_value=0.95)
    quorum = serializers.FloatField(
        required=False, allow_null=True, default=None, help_text="Share of annotators; empty: strict majority."
    )
    fuse = serializers.ChoiceField(choices=["median", "mean"], default="median")
    reliability_weighted = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Weight annotators by their estimated reliability. Empty: yes for projects with 3 or more "
        "annotators per image and no quorum; false for the plain majority.",
    )
    accept_f1 = serializers.FloatField(default=0.8, min_value=0.0, max_value=1.0)
    include_not_blind = serializers.BooleanField(
        default=False,
        help_text="Count the submissions of members with review rights, who could see others' boxes "
        "(left out by default).",
    )


class ConsensusVersionSerializer(serializers.ModelSerializer):
    images = serializers.SerializerMethodField()
    chunks = serializers.SerializerMethodField()

    class Meta:
        model = ConsensusVersion
        fields = [
            "id", "project", "number", "iou_threshold", "quorum", "fuse", "reliability_weighted", "accept_f1",
            "include_not_blind", "code_version", "state", "error", "is_current", "alpha", "alpha_low", "alpha_high",
            "pairwise_f1", "mean_iou", "created_at", "started_at", "finished_at", "images", "chunks",
        ]  # fmt: skip

    def get_images(self, version: ConsensusVersion) -> dict[str, int]:
        """Images per state: auto_accepted, needs_review, adjudicated."""
        return image_state_counts(version=version)

    def get_chunks(self, version: ConsensusVersion) -> dict[str, int]:
        """The version's chunks (computed by the groundtruth workers): total, done, running, workers."""
        return chunk_progress(version=version)


class ProjectConsensusApi(ProjectApiMixin, APIView):
    """A project's consensus versions; POST starts a new one (computed by a worker)."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(responses=ConsensusVersionSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        return Response(ConsensusVersionSerializer(consensus_versions(project=project), many=True).data)

    @extend_schema(request=ConsensusInputSerializer, responses={202: ConsensusVersionSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        data = ConsensusInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = consensus_version_create(project=project, user=request.user, **data.validated_data)
        return Response(ConsensusVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)


class ConsensusVersionApi(APIView):
    """One consensus version: parameters, state, agreement summary, images per state."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(responses=ConsensusVersionSerializer)
    def get(self, request: Request, version_id: int) -> Response:
        version = consensus_version_get(version_id=version_id, user=request.user)
        self.check_object_permissions(request, version.project)
        return Response(ConsensusVersionSerializer(version).data)


class ConsensusReportApi(APIView):
    """The version's agreement report: dataset figures, the human baseline, per-annotator
    habits, the pairwise matrix, breakdowns. `?download=json` or `?download=csv` (one row
    per annotator) answer with a file."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(
        parameters=[OpenApiParameter("download", str, enum=["json", "csv"], required=False)],
        responses={200: dict},
    )
    def get(self, request: Request, version_id: int) -> Response | HttpResponse:
        version = consensus_version_get(version_id=version_id, user=request.user)
        self.check_object_permissions(request, version.project)
        report = AgreementReport.objects.filter(version=version).first()
        if report is None:
            raise Conflict(f"Version {version.number} is {version.state}; its report is not ready.", code="not_ready")
        download = request.query_params.get("download")
        name = f"agreement-{version.project_id}-v{version.number}"
        if download == "json":
            response = HttpResponse(json.dumps(report.data, indent=1), content_type="application/json")
        elif download == "csv":
            response = HttpResponse(report_csv(report.data), content_type="text/csv; charset=utf-8")
        elif download is None:
            return Response(report.data)
        else:
            raise ValidationFailed("download must be json or csv.", fields={"download": ["json or csv"]})
        response["Content-Disposition"] = f'attachment; filename="{name}.{download}"'
        return response


CSV_COLUMNS = (
    "annotator", "images", "seconds_per_image", "precision", "precision_low", "precision_high", "recall", "recall_low",
    "recall_high", "f1", "f1_low", "f1_high", "fppi", "recall_small", "recall_medium", "recall_large",
    "offset_left_heights", "offset_top_heights", "offset_right_heights", "offset_bottom_heights", "shift_x_heights",
    "shift_y_heights", "false_positive_rate", "miss_rate", "boundary_noise", "gold_images", "gold_f1",
)  # fmt: skip


def report_csv(data: dict) -> str:
    """One row per annotator: their baseline figures with intervals, habits and reliability."""
    baseline = {row["id"]: row for row in data["baseline"]["annotators"]}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in data["annotators"]:
        human = baseline.get(row["id"], {})
        intervals = human.get("intervals", {})
        heights = human.get("recall_by_height", {})
        reliability = row["reliability"] or {}
        writer.writerow(
            [
                row["name"], row["images"], row["seconds_per_image"],
                human.get("precision"), *intervals.get("precision", (None, None)),
                human.get("recall"), *intervals.get("recall", (None, None)),
                human.get("f1"), *intervals.get("f1", (None, None)), human.get("fppi"),
                heights.get("<50"), heights.get("50-100"), heights.get(">=100"),
                *row["edge_offsets_heights"].values(), *row["shift_heights"].values(),
                reliability.get("false_positive_rate"), reliability.get("miss_rate"), reliability.get("boundary_noise"),
                (row.get("gold") or {}).get("images"), (row.get("gold") or {}).get("f1"),
            ]
        )  # fmt: skip
    return out.getvalue()


class ReviewRowSerializer(serializers.Serializer):
    image = serializers.IntegerField()
    f1 = serializers.FloatField(allow_null=True)
    mean_iou = serializers.FloatField(allow_null=True)
    uncertain = serializers.IntegerField(help_text="Clusters below the quorum.")
    annotators = serializers.IntegerField()
    conditions = serializers.DictField()


class ReviewQueueApi(ProjectApiMixin, APIView):
    """Images of the current version that need review, least agreed first (paginated)."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(parameters=PAGE_PARAMETERS, responses=paginated(ReviewRowSerializer, "ReviewQueuePage"))
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        paginator = Pagination()
        page = paginator.paginate_queryset(review_queue(project=project), request, view=self)
        return paginator.get_paginated_response(
            [
                {
                    "image": row.image_id,
                    "f1": row.f1,
                    "mean_iou": row.mean_iou,
                    "uncertain": row.uncertain,
                    "annotators": row.annotators,
                    "conditions": row.image.conditions,
                }
                for row in page
            ]
        )


class AdjudicationInputSerializer(serializers.Serializer):
    boxes = BoundedJSONField(help_text="[{x1, y1, x2, y2, label, is_ignored}, ...] in image pixels.")


class AdjudicationApi(APIView):
    """GET: an image's annotators (anonymous letters), the proposed consensus and any
    adjudication. POST: settle it with the given boxes. DELETE: ask for it to be redone."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    def _image(self, request: Request, image_id: int):
        image = image_get(image_id=image_id, user=request.user)
        self.check_object_permissions(request, image.project)
        return image

    @extend_schema(responses={200: dict})
    def get(self, request: Request, image_id: int) -> Response:
        return Response(adjudication_view(image=self._image(request, image_id)))

    @extend_schema(request=AdjudicationInputSerializer, responses={201: dict})
    def post(self, request: Request, image_id: int) -> Response:
        image = self._image(request, image_id)
        data = AdjudicationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        adjudication_save(image=image, reviewer=request.user, boxes=data.validated_data["boxes"])
        return Response(adjudication_view(image=image), status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: dict})
    def delete(self, request: Request, image_id: int) -> Response:
        image = self._image(request, image_id)
        adjudication_undo(image=image)
        return Response(adjudication_view(image=image))


class GoldInputSerializer(serializers.Serializer):
    boxes = BoundedJSONField(required=False, help_text="Reference boxes; or from_adjudication.")
    from_adjudication = serializers.BooleanField(default=False)


class GoldApi(APIView):
    """POST: make the image a gold task with reference boxes (given, or its adjudication's).
    DELETE: take it out of the gold tasks."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    def _image(self, request: Request, image_id: int):
        image = image_get(image_id=image_id, user=request.user)
        self.check_object_permissions(request, image.project)
        return image

    @extend_schema(request=GoldInputSerializer, responses={201: dict})
    def post(self, request: Request, image_id: int) -> Response:
        image = self._image(request, image_id)
        data = GoldInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not data.validated_data["from_adjudication"] and "boxes" not in data.validated_data:
            raise ValidationFailed("Give the reference boxes, or from_adjudication.", fields={"boxes": ["Required."]})
        annotation = gold_set(
            image=image,
            reviewer=request.user,
            boxes=data.validated_data.get("boxes"),
            from_adjudication=data.validated_data["from_adjudication"],
        )
        return Response({"image": image.pk, "is_gold": True, "boxes": annotation.boxes.count()}, status=201)

    @extend_schema(responses={200: dict})
    def delete(self, request: Request, image_id: int) -> Response:
        image = self._image(request, image_id)
        gold_unset(image=image)
        return Response({"image": image.pk, "is_gold": False})


class GoldScoresApi(ProjectApiMixin, APIView):
    """Every annotator's gold score: precision, recall, F1 at IoU 0.5 and mean IoU on gold tasks,
    and whether their gold tasks have paused them."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(responses={200: {"type": "array", "items": {"type": "object"}}})
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        scores = gold_scores(project=project)
        users = get_user_model().objects.in_bulk(list(scores))
        paused = gold_paused(project=project, users=list(users.values()))
        return Response(
            [
                {"annotator": users[user_id].username, **score.as_dict(), "paused": user_id in paused}
                for user_id, score in sorted(scores.items())
            ]
        )


class SuggestionBiasApi(ProjectApiMixin, APIView):
    """What the model's suggestions do to the annotators' boxes, on gold images: taken
    against hand-drawn boxes, and submissions that took suggestions against those that did not."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(responses={200: dict})
    def get(self, request: Request, project_id: int) -> Response:
        return Response(suggestion_bias(project=self.project_for(request, project_id)))


class MyFiguresApi(ProjectApiMixin, APIView):
    """The caller's own figures in the project: gold score, agreement with the others'
    consensus (from the current version's report), speed. Nobody else's."""

    permission_classes = [IsAuthenticated, IsProjectAnnotator]

    @extend_schema(responses={200: dict})
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        return Response(my_figures(project=project, user=request.user))


class UnpauseApi(ProjectApiMixin, APIView):
    """Let a paused annotator continue: their gold tasks so far no longer count against them."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(request=None, responses={200: dict})
    def post(self, request: Request, project_id: int, user_id: int) -> Response:
        project = self.project_for(request, project_id)
        membership = gold_pause_clear(project=project, user_id=user_id)
        return Response({"user": membership.user_id, "gold_cleared_at": membership.gold_cleared_at})
