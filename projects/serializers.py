"""Input and output shapes of the projects API: projects, members, the caller, tokens."""

from rest_framework import serializers

from config.pagination import MAX_INTEGER
from projects.models import Membership, Project, Role
from projects.services import DESCRIPTION_MAX


class ProjectInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=DESCRIPTION_MAX)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, min_length=1, max_length=100
    )
    overlap_k = serializers.IntegerField(required=False, min_value=1, max_value=50, default=3)
    train_percent = serializers.IntegerField(required=False, min_value=1, max_value=98, default=80)
    val_percent = serializers.IntegerField(required=False, min_value=1, max_value=98, default=10)
    test_percent = serializers.IntegerField(required=False, min_value=1, max_value=98, default=10)
    split_seed = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    conditions = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField(max_length=64), min_length=1, max_length=50),
        required=False,
    )
    reviewers_annotate = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Let reviewers and admins take annotation tasks; their submissions are marked not blind.",
    )

    def validate_conditions(self, value: dict) -> dict:
        if len(value) > 20:
            raise serializers.ValidationError("At most 20 condition dimensions.")
        if any(len(dimension) > 64 for dimension in value):
            raise serializers.ValidationError("A dimension's name is at most 64 characters.")
        return value


class ProjectSettingsSerializer(serializers.Serializer):
    """PATCH /projects/{id}/: any of the settings; the service checks them against the
    project (split settings frozen once it has images, k not below its submissions, ...)."""

    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=DESCRIPTION_MAX)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, min_length=1, max_length=100
    )
    overlap_k = serializers.IntegerField(required=False, min_value=1, max_value=50)
    lease_minutes = serializers.IntegerField(required=False, min_value=1, max_value=7 * 24 * 60)
    train_percent = serializers.IntegerField(required=False, min_value=1, max_value=98)
    val_percent = serializers.IntegerField(required=False, min_value=1, max_value=98)
    test_percent = serializers.IntegerField(required=False, min_value=1, max_value=98)
    split_seed = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    conditions = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField(max_length=64), min_length=1, max_length=50),
        required=False,
    )
    gold_rate = serializers.FloatField(required=False, min_value=0, max_value=1)
    gold_pause_after = serializers.IntegerField(required=False, min_value=0, max_value=1000)
    gold_min_f1 = serializers.FloatField(required=False, min_value=0, max_value=1)
    allow_suggestions = serializers.BooleanField(required=False)
    reviewers_annotate = serializers.BooleanField(required=False)

    def validate(self, data: dict) -> dict:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Not a project setting."] for name in unknown})
        if not data:
            raise serializers.ValidationError({"non_field_errors": ["Send at least one setting to change."]})
        return data


class ProjectOutputSerializer(serializers.ModelSerializer):
    """A project as its caller may see it: annotators get only what drawing needs (never how
    many others label an image, the split settings or the conditions images are sorted by)."""

    role = serializers.SerializerMethodField()
    overlap_k = serializers.IntegerField(required=False, help_text="Reviewers and admins only.")
    train_percent = serializers.IntegerField(required=False, help_text="Reviewers and admins only.")
    val_percent = serializers.IntegerField(required=False, help_text="Reviewers and admins only.")
    test_percent = serializers.IntegerField(required=False, help_text="Reviewers and admins only.")
    split_seed = serializers.IntegerField(required=False, help_text="Reviewers and admins only.")
    conditions = serializers.JSONField(required=False, help_text="Reviewers and admins only.")
    reviewers_annotate = serializers.BooleanField(required=False, help_text="Reviewers and admins only.")
    lease_minutes = serializers.IntegerField(required=False, help_text="Reviewers and admins only.")
    gold_rate = serializers.FloatField(required=False, help_text="Reviewers and admins only.")
    gold_pause_after = serializers.IntegerField(required=False, help_text="Reviewers and admins only.")
    gold_min_f1 = serializers.FloatField(required=False, help_text="Reviewers and admins only.")
    allow_suggestions = serializers.BooleanField(required=False, help_text="Reviewers and admins only.")

    REVIEWER_FIELDS = (
        "overlap_k", "train_percent", "val_percent", "test_percent", "split_seed", "conditions", "reviewers_annotate",
        "lease_minutes", "gold_rate", "gold_pause_after", "gold_min_f1", "allow_suggestions",
    )  # fmt: skip

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "labels",
            "overlap_k",
            "train_percent",
            "val_percent",
            "test_percent",
            "split_seed",
            "conditions",
            "reviewers_annotate",
            "lease_minutes",
            "gold_rate",
            "gold_pause_after",
            "gold_min_f1",
            "allow_suggestions",
            "created_at",
            "role",
        ]

    def get_role(self, project: Project) -> str | None:
        roles = self.context.get("roles", {})
        return roles.get(project.pk)

    def to_representation(self, project: Project) -> dict:
        data = super().to_representation(project)
        if data["role"] not in (Role.REVIEWER, Role.ADMIN):
            for name in self.REVIEWER_FIELDS:
                data.pop(name, None)
        return data


class MembershipInputSerializer(serializers.Serializer):
    user = serializers.IntegerField(min_value=1, max_value=MAX_INTEGER)
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipOutputSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["user", "username", "role", "created_at"]


class MeProjectSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="project.id")
    name = serializers.CharField(source="project.name")
    role = serializers.CharField()


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_staff = serializers.BooleanField()
    projects = MeProjectSerializer(many=True)


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(required=False, max_length=150)
    password = serializers.CharField(
        required=False, max_length=4096, style={"input_type": "password"}, trim_whitespace=False
    )


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField()
    created = serializers.DateTimeField()
