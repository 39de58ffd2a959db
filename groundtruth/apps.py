from django.apps import AppConfig


class GroundtruthConfig(AppConfig):
    name = "groundtruth"
