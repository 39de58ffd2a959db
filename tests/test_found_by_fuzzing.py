"""Defects the schema fuzzing (tests/test_schema_fuzz.py) found, each pinned by a plain test."""

import pytest
from django.urls import reverse

from annotation.models import Assignment
from tests.factories import ImageFactory
from tests.storage import is_s3, served

pytestmark = pytest.mark.django_db


def test_an_image_row_whose_file_storage_lost_is_a_404_not_a_500(api_client, people):
    image = ImageFactory(project=people.project)  # a row whose file is not in storage
    api_client.force_authenticate(people.reviewer)
    response = api_client.get(reverse("api-image-file", args=[image.pk]))
    if is_s3():  # Quorum redirects without asking the storage first; S3 answers a missing
        # key with 404, or 403 where the signer may not list the bucket
        assert served(response)[0] in (403, 404)
    else:
        assert response.status_code == 404 and response.json()["error"]["code"] == "file_missing"
    assignment = Assignment.objects.create(
        image=image, annotator=people.annotator, leased_at="2026-01-01T00:00Z", lease_expires_at="2999-01-01T00:00Z"
    )
    api_client.force_authenticate(people.annotator)
    assert served(api_client.get(reverse("api-assignment-image", args=[assignment.pk])))[0] in (403, 404)


def test_a_prediction_request_whose_json_is_a_list_is_a_400(api_client, people):
    api_client.force_authenticate(people.reviewer)
    response = api_client.post(reverse("api-predict"), [None, None], format="json")
    assert response.status_code == 400 and "error" in response.json()


def test_list_answers_are_documented_as_pages_and_errors_with_their_shape(api_client):
    schema = api_client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").json()
    projects = schema["paths"]["/api/v1/projects/"]["get"]["responses"]
    page = projects["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][page]["properties"]) == {"count", "next", "previous", "results"}
    assert projects["4XX"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"
