"""Input and output shapes of the images API: uploads, ingest reports, images, split reports."""

from django.urls import reverse
from rest_framework import serializers

from config.parsers import BoundedJSONField
from datasets.models import Image


class ImageUploadSerializer(serializers.Serializer):
    """Multipart: `files` (repeated); `conditions`, a JSON object for every file; and
    `file_conditions`, a JSON object of file name -> conditions that overrides it per file."""

    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), min_length=1)
    conditions = BoundedJSONField(required=False, default=dict)
    file_conditions = BoundedJSONField(required=False, default=dict)

    def validate_conditions(self, value):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise serializers.ValidationError("Must be a JSON object of dimension -> value.")
        return value

    def validate_file_conditions(self, value):
        if not isinstance(value, dict) or not all(
            isinstance(c, dict) and all(isinstance(v, str) for v in c.values()) for c in value.values()
        ):
            raise serializers.ValidationError("Must be a JSON object of file name -> {dimension: value}.")
        return value


class ZipUploadSerializer(serializers.Serializer):
    archive = serializers.FileField()
    conditions = BoundedJSONField(required=False, default=dict)

    def validate_conditions(self, value):
        return ImageUploadSerializer().validate_conditions(value)


class IngestResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=["stored", "duplicate", "refused"])
    image_id = serializers.IntegerField(allow_null=True)
    split = serializers.CharField(allow_null=True)
    code = serializers.CharField(allow_null=True)
    message = serializers.CharField(allow_null=True)


class IngestReportSerializer(serializers.Serializer):
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    refused = serializers.IntegerField()
    results = IngestResultSerializer(many=True)


class ImageOutputSerializer(serializers.ModelSerializer):
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id",
            "original_name",
            "width",
            "height",
            "format",
            "bytes",
            "sha256",
            "conditions",
            "split",
            "is_gold",
            "is_synthetic",
            "created_at",
            "file_url",
            "thumbnail_url",
        ]

    def get_file_url(self, image: Image) -> str:
        return reverse("api-image-file", kwargs={"image_id": image.pk})

    def get_thumbnail_url(self, image: Image) -> str | None:
        return reverse("api-image-thumbnail", kwargs={"image_id": image.pk}) if image.thumbnail else None


class SplitCountsSerializer(serializers.Serializer):
    train = serializers.IntegerField()
    val = serializers.IntegerField()
    test = serializers.IntegerField()


class ConditionRowSerializer(serializers.Serializer):
    dimension = serializers.CharField()
    value = serializers.CharField()
    total = serializers.IntegerField()
    counts = SplitCountsSerializer()


class SplitWarningSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=["missing", "thin"])
    dimension = serializers.CharField()
    value = serializers.CharField()
    split = serializers.CharField()
    count = serializers.IntegerField()
    expected = serializers.FloatField()
    message = serializers.CharField()


class SplitReportSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    shares = serializers.DictField(child=serializers.FloatField())
    counts = SplitCountsSerializer()
    conditions = ConditionRowSerializer(many=True)
    resolutions = serializers.DictField(child=SplitCountsSerializer())
    warnings = SplitWarningSerializer(many=True)
