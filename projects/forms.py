"""Forms of the project pages."""

from django import forms

from projects.models import default_conditions
from projects.services import DESCRIPTION_MAX


def _conditions_text(conditions: dict[str, list[str]]) -> str:
    return "\n".join(f"{dimension}: {', '.join(values)}" for dimension, values in conditions.items())


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=DESCRIPTION_MAX)
    labels = forms.CharField(initial="pedestrian", help_text="Comma-separated.", max_length=2000)
    overlap_k = forms.IntegerField(min_value=1, max_value=50, initial=3, label="Annotators per image (k)")
    train_percent = forms.IntegerField(min_value=1, max_value=98, initial=80)
    val_percent = forms.IntegerField(min_value=1, max_value=98, initial=10)
    test_percent = forms.IntegerField(min_value=1, max_value=98, initial=10)
    split_seed = forms.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, help_text="Blank for a random seed."
    )
    conditions = forms.CharField(
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        initial=_conditions_text(default_conditions()),
        help_text="One dimension a line: 'weather: sun, rain, night'.",
    )

    def clean_labels(self) -> list[str]:
        return [label.strip() for label in self.cleaned_data["labels"].split(",") if label.strip()]

    def clean_conditions(self) -> dict[str, list[str]]:
        conditions = {}
        for number, line in enumerate(self.cleaned_data["conditions"].splitlines(), start=1):
            if not line.strip():
                continue
            dimension, colon, values = line.partition(":")
            if not colon or not dimension.strip():
                raise forms.ValidationError(f"Line {number}: write 'dimension: value, value'.")
            conditions[dimension.strip()] = [value.strip() for value in values.split(",") if value.strip()]
        return conditions


class ProjectSettingsForm(ProjectForm):
    """A project's settings page: the creation form's fields and the ones a project gets
    later; `projects.services.project_update` checks them against the project."""

    lease_minutes = forms.IntegerField(min_value=1, label="Lease (minutes)", help_text="How long a task is held.")
    gold_rate = forms.FloatField(min_value=0, max_value=1, help_text="Share of tasks that are gold images, 0 to 1.")
    gold_pause_after = forms.IntegerField(
        min_value=0,
        max_value=1000,
        help_text="Pause an annotator whose last this many gold tasks failed (0: never).",
    )
    gold_min_f1 = forms.FloatField(min_value=0, max_value=1, help_text="A gold task below this F1 counts as failed.")
    allow_suggestions = forms.BooleanField(required=False, help_text="Show the champion's boxes in the canvas.")
    reviewers_annotate = forms.BooleanField(
        required=False, help_text="Reviewers and admins may take tasks (their work is marked not blind)."
    )

    @staticmethod
    def initial_for(project) -> dict:
        return {
            "name": project.name,
            "description": project.description,
            "labels": ", ".join(project.labels),
            "overlap_k": project.overlap_k,
            "train_percent": project.train_percent,
            "val_percent": project.val_percent,
            "test_percent": project.test_percent,
            "split_seed": project.split_seed,
            "conditions": _conditions_text(project.conditions),
            "lease_minutes": project.lease_minutes,
            "gold_rate": project.gold_rate,
            "gold_pause_after": project.gold_pause_after,
            "gold_min_f1": project.gold_min_f1,
            "allow_suggestions": project.allow_suggestions,
            "reviewers_annotate": project.reviewers_annotate,
        }

    def changes(self) -> dict:
        """The settings this post changes, as the service takes them (a blank seed: unchanged)."""
        return {
            name: self.cleaned_data[name]
            for name in self.changed_data
            if not (name == "split_seed" and self.cleaned_data[name] is None)
        }
