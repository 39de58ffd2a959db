"""Celery tasks of the images: thin wrappers around datasets/storage.py."""

from celery import shared_task

from datasets.models import Image
from datasets.storage import image_orphans_delete, image_thumbnail_make, image_thumbnails_missing


@shared_task(acks_late=True)
def image_thumbnail_task(image_id: int) -> str | None:
    image = Image.objects.filter(pk=image_id).first()
    if image is None:  # deleted since; nothing to do
        return None
    return image_thumbnail_make(image=image)


@shared_task(acks_late=True)
def image_thumbnails_task(image_ids: list[int]) -> int:
    """Thumbnails of one upload group; safe to run again (a thumbnail is remade in place)."""
    made = 0
    for image in Image.objects.filter(pk__in=image_ids):
        image_thumbnail_make(image=image)
        made += 1
    return made


@shared_task(acks_late=True)
def image_thumbnails_sweep_task() -> int:
    """Enqueue thumbnails whose first enqueue was lost (broker down at upload time)."""
    missing = image_thumbnails_missing()
    for image_id in missing:
        image_thumbnail_task.delay(image_id)
    return len(missing)


@shared_task(acks_late=True)
def image_orphans_delete_task() -> int:
    return len(image_orphans_delete())
