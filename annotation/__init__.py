"""Annotation: projects, membership and roles, images, assignments, annotations, canvas."""
