"""Human3.6M in the COCO-style JSON layout (HGN / Pose2Mesh): readers and writer."""
from data.Human36M.coco_json import (annotation_path, available_subjects, read_h36m_json,
                                     read_h36m_regressor, write_h36m_json)

__all__ = ["annotation_path", "available_subjects", "read_h36m_json", "read_h36m_regressor",
           "write_h36m_json"]
