"""Training: dataset snapshots, YOLO export, training runs, evaluation, model registry."""
