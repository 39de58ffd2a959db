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
