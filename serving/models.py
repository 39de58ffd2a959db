"""Models of the serving app; filled by its issue."""
