"""The foreign keys follow Project and Image to their new apps; the tables do not change."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0001_initial"),
        ("projects", "0001_initial"),
        ("serving", "0001_clients_rules_log_drift"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="apiclient",
                    name="projects",
                    field=models.ManyToManyField(related_name="api_clients", to="projects.project"),
                ),
                migrations.AlterField(
                    model_name="driftreport",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="drift_reports", to="projects.project"
                    ),
                ),
                migrations.AlterField(
                    model_name="predictionlog",
                    name="image",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="datasets.image",
                    ),
                ),
                migrations.AlterField(
                    model_name="predictionlog",
                    name="project",
                    field=models.ForeignKey(
                        null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="projects.project"
                    ),
                ),
                migrations.AlterField(
                    model_name="routingrule",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="routing_rules", to="projects.project"
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
