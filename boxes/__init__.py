"""Pure box computation for Quorum: geometry, matching, consensus, agreement, metrics.

No Django import, ever: everything here takes numpy arrays (N x 4, absolute pixel xyxy,
float) or frozen dataclasses and returns the same.
"""
