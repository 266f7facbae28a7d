"""Self-training on a user's own unlabeled footage with real packaged teachers (``ibntrack adapt``)."""

from ibntrack.adapt.pseudo import PseudoLabelConfig, PseudoLabelError, label_footage
from ibntrack.adapt.selftrain import AdaptConfig, adapt
from ibntrack.adapt.teacher import TeacherError, make_teacher

__all__ = [
    "AdaptConfig",
    "PseudoLabelConfig",
    "PseudoLabelError",
    "TeacherError",
    "adapt",
    "label_footage",
    "make_teacher",
]
