"""Models of the groundtruth app; filled by its issue."""
