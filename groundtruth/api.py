"""REST API of consensus versions (reviewers and admins of the project)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.permissions import IsProjectReviewer, ProjectApiMixin
from groundtruth.models import ConsensusVersion
from groundtruth.selectors import consensus_version_get, consensus_versions, image_state_counts
from groundtruth.services import consensus_version_create


class ConsensusInputSerializer(serializers.Serializer):
    iou_threshold = serializers.FloatField(default=0.5, min_value=0.05, max_value=0.95)
    quorum = serializers.FloatField(
        required=False, allow_null=True, default=None, help_text="Share of annotators; empty: strict majority."
    )
    fuse = serializers.ChoiceField(choices=["median", "mean"], default="median")
    reliability_weighted = serializers.BooleanField(default=False)
    accept_f1 = serializers.FloatField(default=0.8, min_value=0.0, max_value=1.0)


class ConsensusVersionSerializer(serializers.ModelSerializer):
    images = serializers.SerializerMethodField()

    class Meta:
        model = ConsensusVersion
        fields = [
            "id", "project", "number", "iou_threshold", "quorum", "fuse", "reliability_weighted", "accept_f1",
            "code_version", "state", "error", "is_current", "alpha", "alpha_low", "alpha_high", "pairwise_f1",
            "mean_iou", "created_at", "started_at", "finished_at", "images",
        ]  # fmt: skip

    def get_images(self, version: ConsensusVersion) -> dict[str, int]:
        """Images per state: auto_accepted, needs_review, adjudicated."""
        return image_state_counts(version=version)


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
