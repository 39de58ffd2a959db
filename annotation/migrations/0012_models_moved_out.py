"""Project, Membership, ApiToken, Image, SplitTally, SyntheticTruth, Annotation and Box leave this app for projects, datasets, demo and groundtruth. Only Django's state changes: the tables keep their names and rows, and the content types follow the models (so admin permissions and log entries keep pointing at them)."""

import django.db.models.deletion
from django.db import migrations, models

MOVED = {
    "projects": ["project", "membership", "apitoken"],
    "datasets": ["image", "splittally"],
    "demo": ["synthetictruth"],
    "groundtruth": ["annotation", "box"],
}


def _content_types_move(apps, *, back: bool) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    for app, names in MOVED.items():
        old, new = (app, "annotation") if back else ("annotation", app)
        for model in names:
            # a fresh database has none yet (they are made after migrating); one made since is dropped
            if content_type.objects.filter(app_label=old, model=model).exists():
                content_type.objects.filter(app_label=new, model=model).delete()
                content_type.objects.filter(app_label=old, model=model).update(app_label=new)


def content_types_follow(apps, schema_editor) -> None:
    _content_types_move(apps, back=False)


def content_types_return(apps, schema_editor) -> None:
    _content_types_move(apps, back=True)


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("projects", "0001_initial"),
        ("annotation", "0011_image_exif_orientation"),
        ("datasets", "0001_initial"),
        ("groundtruth", "0003_annotations_moved_in"),
        ("serving", "0002_projects_and_images_moved"),
        ("training", "0004_projects_moved"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="annotation",
                    name="annotator",
                ),
                migrations.RemoveField(
                    model_name="annotation",
                    name="image",
                ),
                migrations.RemoveField(
                    model_name="annotation",
                    name="supersedes",
                ),
                migrations.AlterField(
                    model_name="assignment",
                    name="annotation",
                    field=models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="assignment",
                        to="groundtruth.annotation",
                    ),
                ),
                migrations.RemoveField(
                    model_name="apitoken",
                    name="user",
                ),
                migrations.RemoveField(
                    model_name="image",
                    name="project",
                ),
                migrations.RemoveField(
                    model_name="image",
                    name="uploaded_by",
                ),
                migrations.RemoveField(
                    model_name="synthetictruth",
                    name="image",
                ),
                migrations.AlterField(
                    model_name="assignment",
                    name="image",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="assignments", to="datasets.image"
                    ),
                ),
                migrations.AlterField(
                    model_name="suggestion",
                    name="image",
                    field=models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE, related_name="suggestion", to="datasets.image"
                    ),
                ),
                migrations.RemoveField(
                    model_name="membership",
                    name="project",
                ),
                migrations.RemoveField(
                    model_name="membership",
                    name="user",
                ),
                migrations.RemoveField(
                    model_name="project",
                    name="created_by",
                ),
                migrations.RemoveField(
                    model_name="splittally",
                    name="project",
                ),
                migrations.DeleteModel(
                    name="Box",
                ),
                migrations.DeleteModel(
                    name="Annotation",
                ),
                migrations.DeleteModel(
                    name="ApiToken",
                ),
                migrations.DeleteModel(
                    name="SyntheticTruth",
                ),
                migrations.DeleteModel(
                    name="Image",
                ),
                migrations.DeleteModel(
                    name="Membership",
                ),
                migrations.DeleteModel(
                    name="Project",
                ),
                migrations.DeleteModel(
                    name="SplitTally",
                ),
            ],
            database_operations=[migrations.RunPython(content_types_follow, content_types_return)],
        ),
    ]
