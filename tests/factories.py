"""factory_boy factories shared by the tests."""

import factory
from django.contrib.auth import get_user_model

from datasets.models import Image
from datasets.splits import stratum_key
from projects.models import Membership, Project, Role

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(user, create, extracted, **kwargs):
        if create:
            user.save()


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.ANNOTATOR


class ImageFactory(factory.django.DjangoModelFactory):
    """An image row without a stored file, for tests of what sits around images (splits,
    reports, queues); the stratum follows the conditions as ingestion sets it."""

    class Meta:
        model = Image

    project = factory.SubFactory(ProjectFactory)
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    file = factory.LazyAttribute(lambda image: f"images/{image.sha256}.jpg")
    original_name = factory.LazyAttribute(lambda image: f"{image.sha256[:8]}.jpg")
    format = "jpeg"
    width = 1920
    height = 1080
    bytes = 1
    conditions = factory.LazyFunction(dict)
    stratum = factory.LazyAttribute(lambda image: stratum_key(image.conditions))
    split = "train"
