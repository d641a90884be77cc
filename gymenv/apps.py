from django.apps import AppConfig


class GymenvConfig(AppConfig):
    name = "gymenv"
    verbose_name = "Environments"
