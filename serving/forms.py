"""Forms of the project's serving page (project admins): a new API client of the project,
and a routing rule, each limited to the project's own clients, model versions and
deployment targets."""

from django import forms

from projects.models import Project
from serving.models import ApiClient, RoutingRule
from training.models import DeploymentTarget, ModelVersion


class ApiClientForm(forms.ModelForm):
    class Meta:
        model = ApiClient
        fields = ["name", "rate_limit_per_minute"]


class RoutingRuleForm(forms.ModelForm):
    """A rule of `project`: its client one of the project's clients, its models the
    project's versions; the model's own `clean` checks the rest (a canary share needs a canary)."""

    class Meta:
        model = RoutingRule
        fields = ["order", "name", "is_active", "client", "max_width", "max_height", "model", "canary",
                  "canary_share", "shadow", "target"]  # fmt: skip

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.project = project
        versions = ModelVersion.objects.filter(project=project).order_by("-number")
        for name, empty in (("model", "the champion"), ("canary", "none"), ("shadow", "none")):
            field = self.fields[name]
            field.queryset = versions
            field.empty_label = empty
            field.label_from_instance = lambda version: f"model {version.number} ({version.stage})"
        self.fields["client"].queryset = ApiClient.objects.filter(projects=project).order_by("name")
        self.fields["target"].queryset = DeploymentTarget.objects.filter(project=project).order_by("name")
        self.fields["target"].empty_label = "none (the model's own export)"
        self.fields["client"].empty_label = "any caller"
