"""Ground truth: consensus versions, ground-truth boxes, agreement reports, review, gold tasks."""
