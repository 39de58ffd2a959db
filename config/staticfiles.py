"""Static files in production: stored under hashed names and compressed (WhiteNoise), with
the ES modules' imports (static/quorum/lib/) rewritten to those hashed names as well, so a
page never runs a new module against an old one kept in a browser's cache."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class ModuleManifestStaticFilesStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
