"""Image and SplitTally move here from annotation; their tables stay as they are."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import datasets.models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("annotation", "0011_image_exif_orientation"),
        ("projects", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Image",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("file", models.FileField(max_length=255, upload_to=datasets.models.image_storage_name)),
                        (
                            "thumbnail",
                            models.FileField(
                                blank=True, max_length=255, upload_to=datasets.models.thumbnail_storage_name
                            ),
                        ),
                        ("original_name", models.CharField(max_length=255)),
                        (
                            "sha256",
                            models.CharField(
                                help_text="Of the uploaded bytes; duplicates are refused per project.", max_length=64
                            ),
                        ),
                        (
                            "format",
                            models.CharField(
                                choices=[("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WebP")], max_length=8
                            ),
                        ),
                        ("width", models.PositiveIntegerField()),
                        ("height", models.PositiveIntegerField()),
                        (
                            "exif_orientation",
                            models.PositiveSmallIntegerField(
                                default=1,
                                help_text="The uploaded file's EXIF orientation (1: none); 5 to 8 turned it a quarter.",
                            ),
                        ),
                        ("bytes", models.PositiveBigIntegerField(help_text="Size of the stored file.")),
                        (
                            "conditions",
                            models.JSONField(
                                blank=True, default=dict, help_text="Dimension -> value, from the vocabulary."
                            ),
                        ),
                        (
                            "stratum",
                            models.CharField(
                                blank=True,
                                help_text="The condition combination the split is stratified by.",
                                max_length=255,
                            ),
                        ),
                        (
                            "split",
                            models.CharField(
                                choices=[("train", "Train"), ("val", "Validation"), ("test", "Test")], max_length=8
                            ),
                        ),
                        ("is_gold", models.BooleanField(default=False)),
                        ("is_synthetic", models.BooleanField(default=False)),
                        (
                            "shuffle_key",
                            models.PositiveIntegerField(
                                default=0,
                                help_text="Seeded position in the annotation queue among images equally far along.",
                            ),
                        ),
                        (
                            "submitted_count",
                            models.PositiveIntegerField(
                                default=0,
                                help_text="Panel submissions so far (kept with the assignments, for the queue).",
                            ),
                        ),
                        (
                            "priority",
                            models.PositiveSmallIntegerField(
                                default=0,
                                help_text="Higher first in the annotation queue (served images a model was unsure of: 1).",
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "project",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="images",
                                to="projects.project",
                            ),
                        ),
                        (
                            "uploaded_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "annotation_image",
                        "ordering": ["project", "pk"],
                        "indexes": [
                            models.Index(fields=["project", "stratum", "split"], name="annotation__project_30775a_idx"),
                            models.Index(fields=["project", "shuffle_key"], name="annotation__project_e74599_idx"),
                            models.Index(
                                fields=["project", "is_gold", "-priority", "-submitted_count", "shuffle_key"],
                                name="image_queue_idx",
                            ),
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("project", "sha256"), name="image_unique_content_per_project"
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("split__in", ["train", "val", "test"])), name="image_split_valid"
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("height__gte", 1), ("width__gte", 1)), name="image_size_positive"
                            ),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="SplitTally",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("group", models.CharField(max_length=300)),
                        (
                            "split",
                            models.CharField(
                                choices=[("train", "Train"), ("val", "Validation"), ("test", "Test")], max_length=8
                            ),
                        ),
                        ("count", models.PositiveIntegerField(default=0)),
                        (
                            "project",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="split_tallies",
                                to="projects.project",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "annotation_splittally",
                        "ordering": ["project", "group", "split"],
                        "constraints": [
                            models.UniqueConstraint(fields=("project", "group", "split"), name="split_tally_unique")
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
