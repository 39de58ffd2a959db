"""Project, Membership and ApiToken move here from annotation; their tables (annotation_*) stay as they are."""

import django.db.models.deletion
import django.db.models.expressions
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

import projects.models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("annotation", "0011_image_exif_orientation"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiToken",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("prefix", models.CharField(max_length=8)),
                        ("key_sha256", models.CharField(max_length=64, unique=True)),
                        (
                            "password_marker",
                            models.CharField(
                                help_text="A keyed hash of the password hash the token was made under.", max_length=64
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "user",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="api_token",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "API token",
                        "db_table": "annotation_apitoken",
                        "ordering": ["user"],
                    },
                ),
                migrations.CreateModel(
                    name="Project",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("name", models.CharField(max_length=200)),
                        ("description", models.TextField(blank=True)),
                        (
                            "labels",
                            models.JSONField(
                                default=projects.models.default_labels, help_text="The label set boxes may carry."
                            ),
                        ),
                        (
                            "overlap_k",
                            models.PositiveSmallIntegerField(
                                default=3, help_text="How many annotators label each image, blind to each other."
                            ),
                        ),
                        ("train_percent", models.PositiveSmallIntegerField(default=80)),
                        ("val_percent", models.PositiveSmallIntegerField(default=10)),
                        ("test_percent", models.PositiveSmallIntegerField(default=10)),
                        (
                            "split_seed",
                            models.PositiveIntegerField(
                                default=projects.models.new_split_seed,
                                help_text="Seeds the split draw; the same seed and arrivals give the same splits.",
                            ),
                        ),
                        (
                            "conditions",
                            models.JSONField(
                                default=projects.models.default_conditions,
                                help_text="Condition vocabulary: dimension -> allowed values.",
                            ),
                        ),
                        (
                            "lease_minutes",
                            models.PositiveIntegerField(
                                default=30,
                                help_text="How long an annotator holds an image before it returns to the pool.",
                            ),
                        ),
                        (
                            "gold_rate",
                            models.FloatField(default=0.0, help_text="Share of tasks that are gold images, 0 to 1."),
                        ),
                        (
                            "allow_suggestions",
                            models.BooleanField(
                                default=False,
                                help_text="Show the champion's boxes in the canvas as suggestions. Off keeps the panel blind; boxes taken from a suggestion are marked, so their bias can be measured on gold images.",
                            ),
                        ),
                        (
                            "gold_pause_after",
                            models.PositiveSmallIntegerField(
                                default=0,
                                help_text="Pause an annotator whose last this many gold tasks all scored below gold_min_f1 (0: never).",
                            ),
                        ),
                        (
                            "gold_min_f1",
                            models.FloatField(
                                default=0.5, help_text="The gold F1 (IoU 0.5) below which a gold task counts as failed."
                            ),
                        ),
                        (
                            "reviewers_annotate",
                            models.BooleanField(
                                default=False,
                                help_text="Members with review rights (reviewers, admins, staff) may take annotation tasks. They can see others' boxes, so their annotations are marked not blind, fill none of an image's k places, and are left out of the consensus and the human baseline unless a consensus version includes them.",
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "created_by",
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
                        "db_table": "annotation_project",
                        "ordering": ["name", "pk"],
                    },
                ),
                migrations.CreateModel(
                    name="Membership",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "role",
                            models.CharField(
                                choices=[("annotator", "Annotator"), ("reviewer", "Reviewer"), ("admin", "Admin")],
                                default="annotator",
                                max_length=16,
                            ),
                        ),
                        (
                            "gold_cleared_at",
                            models.DateTimeField(
                                blank=True,
                                help_text="A reviewer let them continue: earlier gold tasks no longer pause them.",
                                null=True,
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="memberships",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "project",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="memberships",
                                to="projects.project",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "annotation_membership",
                        "ordering": ["project", "user__username"],
                    },
                ),
                migrations.AddConstraint(
                    model_name="project",
                    constraint=models.UniqueConstraint(
                        django.db.models.functions.text.Lower("name"), name="project_name_unique_ci"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="project",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("overlap_k__gte", 1)), name="project_overlap_k_positive"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="project",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("gold_rate__gte", 0), ("gold_rate__lte", 1)), name="project_gold_rate_range"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="project",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("lease_minutes__gte", 1)), name="project_lease_positive"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="project",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            ("train_percent__gte", 1),
                            ("val_percent__gte", 1),
                            ("test_percent__gte", 1),
                            ("train_percent__lte", 98),
                        ),
                        name="project_split_percent_range",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="project",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            (
                                "train_percent",
                                django.db.models.expressions.CombinedExpression(
                                    django.db.models.expressions.CombinedExpression(
                                        models.Value(100), "-", models.F("val_percent")
                                    ),
                                    "-",
                                    models.F("test_percent"),
                                ),
                            )
                        ),
                        name="project_split_percent_sum_100",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="membership",
                    constraint=models.UniqueConstraint(
                        fields=("project", "user"), name="membership_unique_user_per_project"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="membership",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("role__in", ["annotator", "reviewer", "admin"])),
                        name="membership_role_valid",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
