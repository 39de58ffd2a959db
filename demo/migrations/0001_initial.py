"""SyntheticTruth moves here from annotation; its table stays as it is."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("annotation", "0011_image_exif_orientation"),
        ("datasets", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SyntheticTruth",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("generator", models.CharField(max_length=32)),
                        ("seed", models.PositiveBigIntegerField()),
                        ("boxes", models.JSONField(help_text="Pedestrians: [[x1, y1, x2, y2], ...] in image pixels.")),
                        (
                            "visible",
                            models.JSONField(help_text="Fraction of each pedestrian left visible by occluders."),
                        ),
                        ("ignore", models.JSONField(help_text="Crowd regions: [[x1, y1, x2, y2], ...].")),
                        (
                            "image",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="synthetic_truth",
                                to="datasets.image",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "annotation_synthetictruth",
                        "ordering": ["image"],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
