from django.apps import AppConfig


class ServingConfig(AppConfig):
    name = "serving"

    def ready(self) -> None:
        """Saves and deletes of what a prediction looks up drop the processes' kept copies
        (serving/state.py: why these are signals); the served images are offered to training's
        data curves."""
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from projects.models import Project
        from serving.models import ApiClient, RoutingRule
        from serving.state import serving_state_changed
        from training.models import ModelVersion

        for model in (ApiClient, RoutingRule, ModelVersion, Project):
            post_save.connect(serving_state_changed, sender=model, dispatch_uid=f"serving-state-save-{model.__name__}")
            post_delete.connect(
                serving_state_changed, sender=model, dispatch_uid=f"serving-state-delete-{model.__name__}"
            )
        for through in (ApiClient.projects.through, ApiClient.allowed_models.through):
            m2m_changed.connect(serving_state_changed, sender=through, dispatch_uid=f"serving-state-{through.__name__}")

        # the data curves weigh each condition by the served traffic (training.traffic: why registered)
        from serving.selectors import served_images
        from training.traffic import served_images_register

        served_images_register(served_images)
