"""Annotation and Box move here from annotation (their tables stay as they are); the foreign keys follow Project and Image to their new apps."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0001_initial"),
        ("groundtruth", "0002_blind_panels_hashed_tokens"),
        ("projects", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="adjudication",
                    name="image",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="adjudications", to="datasets.image"
                    ),
                ),
                migrations.AlterField(
                    model_name="consensusversion",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="consensus_versions",
                        to="projects.project",
                    ),
                ),
                migrations.AlterField(
                    model_name="imageconsensus",
                    name="image",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="consensus", to="datasets.image"
                    ),
                ),
                migrations.CreateModel(
                    name="Annotation",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[("submission", "Annotator's submission"), ("gold", "Gold reference")],
                                default="submission",
                                max_length=16,
                            ),
                        ),
                        (
                            "source",
                            models.CharField(
                                choices=[
                                    ("panel", "Drawn in Quorum"),
                                    ("import", "Imported"),
                                    ("simulated", "Simulated annotator"),
                                ],
                                default="panel",
                                max_length=16,
                            ),
                        ),
                        ("revision", models.PositiveIntegerField(default=1)),
                        (
                            "is_current",
                            models.BooleanField(default=True, help_text="False once a later revision supersedes it."),
                        ),
                        (
                            "is_blind",
                            models.BooleanField(
                                default=True,
                                help_text="Made without sight of anyone else's boxes; False for a member with review rights, whose submissions are left out of the consensus and the human baseline by default.",
                            ),
                        ),
                        ("active_seconds", models.FloatField(blank=True, null=True)),
                        ("submitted_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "annotator",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="annotations",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "image",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="annotations",
                                to="datasets.image",
                            ),
                        ),
                        (
                            "supersedes",
                            models.OneToOneField(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="superseded_by",
                                to="groundtruth.annotation",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "annotation_annotation",
                        "ordering": ["image", "annotator", "revision"],
                    },
                ),
                migrations.CreateModel(
                    name="Box",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("x1", models.FloatField()),
                        ("y1", models.FloatField()),
                        ("x2", models.FloatField()),
                        ("y2", models.FloatField()),
                        ("label", models.CharField(default="pedestrian", max_length=64)),
                        ("is_occluded", models.BooleanField(default=False)),
                        ("is_truncated", models.BooleanField(default=False)),
                        (
                            "is_ignored",
                            models.BooleanField(default=False, help_text="An ignore region: a crowd, or can't tell."),
                        ),
                        (
                            "is_from_suggestion",
                            models.BooleanField(default=False, help_text="Began as a model's suggestion."),
                        ),
                        (
                            "annotation",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="boxes",
                                to="groundtruth.annotation",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "annotation_box",
                        "ordering": ["annotation", "pk"],
                    },
                ),
                migrations.AddIndex(
                    model_name="annotation",
                    index=models.Index(fields=["image", "kind", "is_current"], name="annotation__image_i_fb7c03_idx"),
                ),
                migrations.AddConstraint(
                    model_name="annotation",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("is_current", True)),
                        fields=("image", "annotator", "kind"),
                        name="annotation_one_current_per_image_annotator_kind",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="annotation",
                    constraint=models.UniqueConstraint(
                        fields=("image", "annotator", "kind", "revision"), name="annotation_unique_revision"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="box",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("x2__gt", models.F("x1")), ("y2__gt", models.F("y1"))),
                        name="box_positive_size",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="box",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("x1__gte", 0), ("y1__gte", 0)), name="box_inside_origin"
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
