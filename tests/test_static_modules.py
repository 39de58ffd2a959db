"""The pages' ES modules survive `collectstatic`: with the production storage, each module's
imports point at the hashed names of the files they import, and those files exist."""

import json
import re

from django.core.management import call_command

PRODUCTION = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "config.staticfiles.ModuleManifestStaticFilesStorage"},
}


def test_collected_modules_import_the_hashed_files(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = PRODUCTION
    call_command("collectstatic", interactive=False, verbosity=0)
    paths = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    for page in ("quorum/canvas.js", "quorum/review.js", "quorum/tryit.js"):
        text = (tmp_path / paths[page]).read_text()
        imported = re.findall(r'from "(\./lib/[^"]+)"', text)
        assert imported, page
        for name in imported:
            assert re.fullmatch(r"\./lib/\w+\.[0-9a-f]{12}\.js", name), f"{page} imports {name} unhashed"
            assert (tmp_path / "quorum" / name[2:]).exists(), name
