"""REST API of projects, memberships, the current user and API tokens."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated, Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_docs import PAGE_PARAMETERS, paginated
from config.pagination import Pagination
from projects.models import Role
from projects.permissions import IsProjectAdmin, IsProjectAnnotator, IsProjectReviewer, IsStaff, ProjectApiMixin
from projects.selectors import membership_get, membership_list, project_list, project_role, projects_with_roles
from projects.serializers import (
    MembershipInputSerializer,
    MembershipOutputSerializer,
    MembershipRoleSerializer,
    MeSerializer,
    ProjectInputSerializer,
    ProjectOutputSerializer,
    ProjectSettingsSerializer,
    TokenOutputSerializer,
    TokenRequestSerializer,
)
from projects.services import (
    api_token_revoke,
    api_token_rotate,
    membership_remove,
    membership_set,
    project_create,
    project_update,
)
from projects.sign_in import client_address, sign_in_succeeded, sign_in_take, sign_in_wait_message


def _roles_by_project(user) -> dict[int, str]:
    return {item.project.pk: item.role.value for item in projects_with_roles(user=user)}


class ProjectListApi(APIView):
    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated(), IsStaff()]
        return [IsAuthenticated()]

    @extend_schema(parameters=PAGE_PARAMETERS, responses=paginated(ProjectOutputSerializer, "ProjectPage"))
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(project_list(user=request.user), request, view=self)
        context = {"roles": _roles_by_project(request.user)}
        return paginator.get_paginated_response(ProjectOutputSerializer(page, many=True, context=context).data)

    @extend_schema(request=ProjectInputSerializer, responses={201: ProjectOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = ProjectInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = project_create(created_by=request.user, **serializer.validated_data)
        context = {"roles": {project.pk: Role.ADMIN.value}}
        return Response(ProjectOutputSerializer(project, context=context).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(ProjectApiMixin, APIView):
    def get_permissions(self):
        if self.request.method == "PATCH":
            return [IsAuthenticated(), IsProjectAdmin()]
        return [IsAuthenticated(), IsProjectAnnotator()]

    @extend_schema(responses=ProjectOutputSerializer)
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        context = {"roles": {project.pk: project_role(project=project, user=request.user)}}
        return Response(ProjectOutputSerializer(project, context=context).data)

    @extend_schema(request=ProjectSettingsSerializer, responses=ProjectOutputSerializer)
    def patch(self, request: Request, project_id: int) -> Response:
        """Change the project's settings (project admins); 400 naming each refused setting."""
        project = self.project_for(request, project_id)
        data = ProjectSettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = project_update(project=project, **data.validated_data)
        context = {"roles": {project.pk: project_role(project=project, user=request.user)}}
        return Response(ProjectOutputSerializer(project, context=context).data)


class MembershipListApi(ProjectApiMixin, APIView):
    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated(), IsProjectAdmin()]
        return [IsAuthenticated(), IsProjectReviewer()]

    @extend_schema(responses=MembershipOutputSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        return Response(MembershipOutputSerializer(membership_list(project=project), many=True).data)

    @extend_schema(request=MembershipInputSerializer, responses={201: MembershipOutputSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        serializer = MembershipInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = membership_set(
            project=project, user_id=serializer.validated_data["user"], role=Role(serializer.validated_data["role"])
        )
        return Response(MembershipOutputSerializer(membership).data, status=status.HTTP_201_CREATED)


class MembershipDetailApi(ProjectApiMixin, APIView):
    permission_classes = [IsAuthenticated, IsProjectAdmin]

    @extend_schema(request=MembershipRoleSerializer, responses=MembershipOutputSerializer)
    def put(self, request: Request, project_id: int, user_id: int) -> Response:
        project = self.project_for(request, project_id)
        membership_get(project=project, user_id=user_id)
        serializer = MembershipRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = membership_set(project=project, user_id=user_id, role=Role(serializer.validated_data["role"]))
        return Response(MembershipOutputSerializer(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, project_id: int, user_id: int) -> Response:
        project = self.project_for(request, project_id)
        membership_remove(membership=membership_get(project=project, user_id=user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        user = request.user
        data = {
            "id": user.pk,
            "username": user.get_username(),
            "is_staff": user.is_staff,
            "projects": projects_with_roles(user=user),
        }
        return Response(MeSerializer(data).data)


class ApiTokenApi(APIView):
    """Create (rotating any earlier one) or revoke the caller's API token.

    POST works for a signed-in session or a token, or with `username` and `password` in the
    body for a script that has neither yet.
    """

    permission_classes = [AllowAny]

    @extend_schema(request=TokenRequestSerializer, responses={201: TokenOutputSerializer})
    def post(self, request: Request) -> Response:
        user = request.user
        if not user.is_authenticated:
            serializer = TokenRequestSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            username = serializer.validated_data.get("username")
            password = serializer.validated_data.get("password")
            if not username or not password:
                raise NotAuthenticated("Sign in, or send username and password.")
            address = client_address(request._request)
            wait = sign_in_take(username=username, address=address)
            if wait is not None:
                raise Throttled(wait=wait, detail=sign_in_wait_message(wait))
            user = authenticate(request._request, username=username, password=password)
            if user is None:
                raise AuthenticationFailed("Unknown username or wrong password.")
            sign_in_succeeded(username=username, address=address)
        token = api_token_rotate(user=user)
        response = Response(TokenOutputSerializer({"token": token.key, "created": token.created}).data, status=201)
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(responses={204: None})
    def delete(self, request: Request) -> Response:
        if not request.user.is_authenticated:
            raise NotAuthenticated()
        api_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
