"""The foreign keys follow Project to its new app; the tables do not change."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0001_initial"),
        ("training", "0003_base_weights_and_devices"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="datasetsnapshot",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="snapshots", to="projects.project"
                    ),
                ),
                migrations.AlterField(
                    model_name="modelversion",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="model_versions",
                        to="projects.project",
                    ),
                ),
                migrations.AlterField(
                    model_name="trainingpolicy",
                    name="project",
                    field=models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="training_policy",
                        to="projects.project",
                    ),
                ),
                migrations.AlterField(
                    model_name="trainingrun",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="training_runs", to="projects.project"
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
