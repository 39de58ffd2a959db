from django.urls import path

from groundtruth import api

urlpatterns = [
    path("projects/<int:project_id>/consensus/", api.ProjectConsensusApi.as_view(), name="api-project-consensus"),
    path("consensus/<int:version_id>/", api.ConsensusVersionApi.as_view(), name="api-consensus-version"),
    path("consensus/<int:version_id>/report/", api.ConsensusReportApi.as_view(), name="api-consensus-report"),
    path("projects/<int:project_id>/review-queue/", api.ReviewQueueApi.as_view(), name="api-review-queue"),
    path("images/<int:image_id>/adjudication/", api.AdjudicationApi.as_view(), name="api-adjudication"),
    path("images/<int:image_id>/gold/", api.GoldApi.as_view(), name="api-gold"),
    path("projects/<int:project_id>/gold-scores/", api.GoldScoresApi.as_view(), name="api-gold-scores"),
    path("projects/<int:project_id>/suggestion-bias/", api.SuggestionBiasApi.as_view(), name="api-suggestion-bias"),
    path("projects/<int:project_id>/my-figures/", api.MyFiguresApi.as_view(), name="api-my-figures"),
    path(
        "projects/<int:project_id>/members/<int:user_id>/unpause/", api.UnpauseApi.as_view(), name="api-member-unpause"
    ),
]
